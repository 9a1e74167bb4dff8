/* Needs libbaz, libfoo and libbar, each found through its RUNPATH. */
#include <stdio.h>

#include "bar.h"
#include "foo.h"

int baz(void);

int main(void) {
    printf("foo %d bar %d baz %d\n", foo(), bar(), baz());
    return 0;
}

/* libbaz.so, in the program's `lib` output, needs libfoo.so and libbar.so. */
#include "bar.h"
#include "foo.h"

int baz(void) { return foo() + bar(); }

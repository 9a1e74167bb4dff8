/* libbar.so needs libfoo.so, from another store path. */
#include "bar.h"
#include "foo.h"

int bar(void) { return foo() / 20; }

/* libfoo.so needs no library: the tool has nothing to cache for it. */
#include "foo.h"

int foo(void) { return 40; }

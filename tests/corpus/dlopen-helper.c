/* dlopen-helper FILE: dlopen FILE with RTLD_LAZY | RTLD_LOCAL; exit 0 when it loads, else print
 * dlerror() and exit 1.  Used by tests/corpus/run.sh before and after embedding. */
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: dlopen-helper FILE\n");
        return 2;
    }
    void *handle = dlopen(argv[1], RTLD_LAZY | RTLD_LOCAL);
    if (handle == NULL) {
        printf("%s\n", dlerror());
        fflush(stdout);
        _exit(1);
    }
    fflush(stdout);
    _exit(0); /* skip the library's destructors: only loading is tested */
}

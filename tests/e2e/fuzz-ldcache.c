/* libFuzzer harness for the ldcache note parser of the glibc patch
   (elf/dl-ldcache.c compiled with LDCACHE_STANDALONE).

   Input: one byte choosing the segment's p_align, then the bytes of a
   PT_NOTE segment.  The segment is copied to a heap block of exactly its
   size, so AddressSanitizer reports any read outside it.

   clang -g -O1 -fsanitize=fuzzer,address -I<patched glibc>/elf \
     fuzz-ldcache.c -o fuzz-ldcache  */

#define LDCACHE_STANDALONE
#include "dl-ldcache.c"

#include <stdlib.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* Mostly the valid alignments, sometimes invalid ones.  */
  static const size_t aligns[] = { 4, 8, 4, 8, 0, 1, 2, 16 };
  if (size == 0)
    return 0;
  size_t align = aligns[data[0] % 8];
  char *seg = malloc (size - 1);
  memcpy (seg, data + 1, size - 1);

  struct ldcache_notes notes = { .cache = NULL };
  ldcache_scan (seg, size - 1, align, &notes);

  /* Look up every soname of an accepted cache, and one it lacks, as the
     loader would.  */
  if (notes.cache != NULL)
    {
      for (const char *name = notes.cache; *name != '\0'; )
	{
	  const char *paths = name + strlen (name) + 1;
	  if (ldcache_find (notes.cache, name) == NULL)
	    abort ();
	  name = paths + strlen (paths) + 1;
	}
      ldcache_find (notes.cache, "libnot-there.so.1");
    }
  /* An accepted fingerprint names one of the two search steps.  */
  if (notes.tag != 0 && notes.tag != DT_RUNPATH && notes.tag != DT_RPATH)
    abort ();

  free (seg);
  return 0;
}

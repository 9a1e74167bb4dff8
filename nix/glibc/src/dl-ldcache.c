/* Per-object library resolution cache (ldcache note).
   Copyright (C) 2026 Free Software Foundation, Inc.
   This file is part of the GNU C Library.

   The GNU C Library is free software; you can redistribute it and/or
   modify it under the terms of the GNU Lesser General Public
   License as published by the Free Software Foundation; either
   version 2.1 of the License, or (at your option) any later version.

   The GNU C Library is distributed in the hope that it will be useful,
   but WITHOUT ANY WARRANTY; without even the implied warranty of
   MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the GNU
   Lesser General Public License for more details.

   You should have received a copy of the GNU Lesser General Public
   License along with the GNU C Library; if not, see
   <https://www.gnu.org/licenses/>.  */

/* An object may record, at build time, where each of its DT_NEEDED
   sonames is found on its search path, in PT_NOTE notes of owner
   "NixOS":

   NT_NIXOS_LDCACHE: pairs of NUL-terminated strings "SONAME\0PATHS\0",
   ended by an empty SONAME.  PATHS lists in search order, separated by
   ':', "=FILE" (open exactly FILE) or "?DIR" (search DIR as a DT_RUNPATH
   entry).  This is the format of patchelf --build-resolution-cache.

   NT_NIXOS_LDCACHE_FINGERPRINT: what the cache was computed from, so
   that a cache made stale by a later change of the search path is not
   used.  24 bytes in the object's byte order: a 32-bit version (2), the
   32-bit tag whose search step the cache replaces (DT_RUNPATH, or
   DT_RPATH for the object's own DT_RPATH search), the 32-bit length of
   that tag's string, 32 zero bits, and the XXH64 hash (seed 0) of the
   string.  Without this note the cache replaces the DT_RUNPATH search.

   The cache is a hint: when it does not lead to a file, the normal
   search follows.  With LDCACHE_STANDALONE defined, only the note parser
   is compiled, outside glibc (for fuzzing).  */

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef LDCACHE_STANDALONE
# include <link.h>
# define ALIGN_UP(base, size) (((base) + (size) - 1) & ~((size) - 1))
#else
# include <ldsodefs.h>
# include <libc-pointer-arith.h>
# include <dl-ldcache.h>
#endif

#define NT_NIXOS_LDCACHE 0x63a86cb6
#define NT_NIXOS_LDCACHE_FINGERPRINT 0x63a86cb7

/* What the notes of one object say.  */
struct ldcache_notes
{
  /* Descriptor of the first NT_NIXOS_LDCACHE note, known to be
     well-formed; NULL if there is none.  */
  const char *cache;
  /* Tag, string length and string hash of the first
     NT_NIXOS_LDCACHE_FINGERPRINT note; TAG is 0 if there is none.  */
  uint32_t tag;
  uint32_t length;
  uint64_t hash;
  /* One of our notes is malformed or of an unknown version: the cache
     must not be used.  */
  bool bad;
};

/* Return true if the SIZE bytes at DESC are a well-formed cache: pairs
   of NUL-terminated strings, then an empty string.  Bytes after that are
   ignored.  */
static bool
ldcache_valid (const char *desc, size_t size)
{
  size_t off = 0;

  /* Invariant: OFF <= SIZE.  A pair starts at OFF; both of its strings
     must end before SIZE.  */
  while (off < size && desc[off] != '\0')
    for (int i = 0; i < 2; ++i)
      {
	const char *end = memchr (desc + off, '\0', size - off);
	if (end == NULL)
	  return false;
	off = end + 1 - desc;
      }
  return off < size;
}

/* Record in NOTES the note of owner "NixOS", type TYPE and descriptor
   DESC of SIZE bytes, unless one of that type was seen before.  */
static void
ldcache_note (uint32_t type, const char *desc, size_t size,
	      struct ldcache_notes *notes)
{
  if (type == NT_NIXOS_LDCACHE && notes->cache == NULL)
    {
      if (ldcache_valid (desc, size))
	notes->cache = desc;
      else
	notes->bad = true;
    }
  else if (type == NT_NIXOS_LDCACHE_FINGERPRINT && notes->tag == 0)
    {
      /* Version, tag, length, zero; then the hash.  */
      uint32_t word[4];
      uint64_t hash;

      if (size != sizeof word + sizeof hash)
	{
	  notes->bad = true;
	  return;
	}
      memcpy (word, desc, sizeof word);
      memcpy (&hash, desc + sizeof word, sizeof hash);
      if (word[0] != 2 || (word[1] != DT_RUNPATH && word[1] != DT_RPATH)
	  || word[3] != 0)
	notes->bad = true;
      else
	{
	  notes->tag = word[1];
	  notes->length = word[2];
	  notes->hash = hash;
	}
    }
}

/* Record in NOTES our notes among the SIZE bytes of notes at SEG, which
   is 4-byte aligned and laid out with alignment ALIGN (the segment's
   p_align, 4 or 8).  Never reads outside SEG[0, SIZE).  */
static void
ldcache_scan (const char *seg, size_t size, size_t align,
	      struct ldcache_notes *notes)
{
  if (align != 4 && align != 8)
    return;

  /* Invariant: OFF < SIZE and OFF is a multiple of ALIGN; SIZE is that
     of a mapped segment, so OFF + SIZE + ALIGN does not overflow.  */
  for (size_t off = 0; size - off >= sizeof (ElfW(Nhdr)); )
    {
      const ElfW(Nhdr) *note = (const void *) (seg + off);
      size_t rest = size - off;

      if (note->n_namesz > rest - sizeof (ElfW(Nhdr)))
	return;
      size_t desc_off = ALIGN_UP (sizeof (ElfW(Nhdr)) + note->n_namesz,
				  align);
      if (desc_off > rest || note->n_descsz > rest - desc_off)
	return;

      if (note->n_namesz == sizeof "NixOS"
	  && memcmp (note + 1, "NixOS", sizeof "NixOS") == 0)
	ldcache_note (note->n_type, seg + off + desc_off, note->n_descsz,
		      notes);

      size_t next = ALIGN_UP (desc_off + note->n_descsz, align);
      if (next >= rest)
	return;
      off += next;
    }
}

/* Return the path list that CACHE (accepted by ldcache_valid) records
   for NAME, or NULL.  */
static const char *
ldcache_find (const char *cache, const char *name)
{
  while (*cache != '\0')
    {
      const char *paths = cache + strlen (cache) + 1;
      if (strcmp (cache, name) == 0)
	return paths;
      cache = paths + strlen (paths) + 1;
    }
  return NULL;
}

#ifndef LDCACHE_STANDALONE

#define XXH_PRIME_1 0x9e3779b185ebca87ULL
#define XXH_PRIME_2 0xc2b2ae3d27d4eb4fULL
#define XXH_PRIME_3 0x165667b19e3779f9ULL
#define XXH_PRIME_4 0x85ebca77c2b2ae63ULL
#define XXH_PRIME_5 0x27d4eb2f165667c5ULL

static inline uint64_t
ldcache_rotl (uint64_t x, int n)
{
  return (x << n) | (x >> (64 - n));
}

/* Return the 8 bytes at P, and the 4 bytes at P, as little-endian
   numbers (XXH64 reads its input so whatever the host).  */
static inline uint64_t
ldcache_le64 (const char *p)
{
  uint64_t value;

  memcpy (&value, p, sizeof value);
  return le64toh (value);
}

static inline uint64_t
ldcache_le32 (const char *p)
{
  uint32_t value;

  memcpy (&value, p, sizeof value);
  return le32toh (value);
}

static inline uint64_t
ldcache_xxh_round (uint64_t acc, uint64_t lane)
{
  return ldcache_rotl (acc + lane * XXH_PRIME_2, 31) * XXH_PRIME_1;
}

/* Return the XXH64 hash with seed 0 of the LENGTH bytes at S.  It reads
   eight bytes a step in four independent lanes: the search path is
   hashed once per object at start-up, and Nix search paths run to
   kilobytes.  */
static uint64_t
ldcache_xxh64 (const char *s, size_t length)
{
  const char *end = s + length;
  uint64_t hash;

  if (length >= 32)
    {
      uint64_t lane[4] = { XXH_PRIME_1 + XXH_PRIME_2, XXH_PRIME_2, 0,
			   -XXH_PRIME_1 };

      for (; end - s >= 32; s += 32)
	for (int i = 0; i < 4; ++i)
	  lane[i] = ldcache_xxh_round (lane[i], ldcache_le64 (s + 8 * i));
      hash = (ldcache_rotl (lane[0], 1) + ldcache_rotl (lane[1], 7)
	      + ldcache_rotl (lane[2], 12) + ldcache_rotl (lane[3], 18));
      for (int i = 0; i < 4; ++i)
	hash = ((hash ^ ldcache_xxh_round (0, lane[i])) * XXH_PRIME_1
		+ XXH_PRIME_4);
    }
  else
    hash = XXH_PRIME_5;
  hash += length;

  for (; end - s >= 8; s += 8)
    hash = (ldcache_rotl (hash ^ ldcache_xxh_round (0, ldcache_le64 (s)), 27)
	    * XXH_PRIME_1 + XXH_PRIME_4);
  if (end - s >= 4)
    {
      hash = (ldcache_rotl (hash ^ ldcache_le32 (s) * XXH_PRIME_1, 23)
	      * XXH_PRIME_2 + XXH_PRIME_3);
      s += 4;
    }
  for (; s < end; ++s)
    hash = (ldcache_rotl (hash ^ (unsigned char) *s * XXH_PRIME_5, 11)
	    * XXH_PRIME_1);

  hash ^= hash >> 33;
  hash *= XXH_PRIME_2;
  hash ^= hash >> 29;
  hash *= XXH_PRIME_3;
  return hash ^ (hash >> 32);
}

/* In ld.so __environ is not exported.  */
extern char **__environ attribute_hidden;

/* Return true if LD_LDCACHE_DISABLE is set to a non-empty value.  It is
   honoured in secure mode too: it only restores the normal search.  */
static bool
ldcache_disabled (void)
{
  /* -1 until the environment is read; callers hold dl_load_lock.  */
  static int disabled = -1;

  if (disabled < 0)
    {
      char **runp = __environ;
      char *envline;

      disabled = 0;
      while ((envline = _dl_next_ld_env_entry (&runp)) != NULL)
	if (strncmp (envline, "LDCACHE_DISABLE=", 16) == 0
	    && envline[16] != '\0')
	  disabled = 1;
      if (disabled && __glibc_unlikely (GLRO(dl_debug_mask) & DL_DEBUG_LIBS))
	_dl_debug_printf ("ldcache: disabled by LD_LDCACHE_DISABLE\n");
    }
  return disabled;
}

/* Return true if the note segment PH of L is 4-byte aligned and lies
   within a readable load segment, so that it can be read in memory.  */
static bool
ldcache_mapped (const struct link_map *l, const ElfW(Phdr) *ph)
{
  if (ph->p_vaddr % sizeof (uint32_t) != 0)
    return false;
  for (const ElfW(Phdr) *load = l->l_phdr;
       load < &l->l_phdr[l->l_phnum]; ++load)
    if (load->p_type == PT_LOAD && (load->p_flags & PF_R) != 0
	&& ph->p_vaddr >= load->p_vaddr
	&& ph->p_memsz <= load->p_filesz
	&& ph->p_vaddr - load->p_vaddr <= load->p_filesz - ph->p_memsz)
      return true;
  return false;
}

/* Read the notes of L and decide whether its cache may be used: set
   L->l_ldcache_tag to the search step the cache replaces (DT_RUNPATH or
   DT_RPATH), or to -1 if there is no usable cache.  */
static void
ldcache_init (struct link_map *l)
{
  struct ldcache_notes notes = { NULL, 0, 0, 0, false };

  l->l_ldcache_tag = -1;
  if (ldcache_disabled ())
    return;

  for (const ElfW(Phdr) *ph = l->l_phdr; ph < &l->l_phdr[l->l_phnum]; ++ph)
    if (ph->p_type == PT_NOTE && ldcache_mapped (l, ph))
      ldcache_scan ((const char *) (l->l_addr + ph->p_vaddr), ph->p_memsz,
		    ph->p_align, &notes);
  if (notes.cache == NULL && !notes.bad)
    return;

  /* The cache must describe the search step L really has: DT_RPATH
     counts only without DT_RUNPATH.  */
  int tag = notes.tag != 0 ? (int) notes.tag : DT_RUNPATH;
  int have = (l->l_info[DT_RUNPATH] != NULL ? DT_RUNPATH
	      : l->l_info[DT_RPATH] != NULL ? DT_RPATH : -1);
  const char *problem = NULL;
  if (notes.bad)
    problem = "malformed";
  else if (tag != have)
    problem = "stale";
  else
    {
      const char *path = ((const char *) D_PTR (l, l_info[DT_STRTAB])
			  + l->l_info[tag]->d_un.d_val);
      /* An empty search path is not searched (decompose_rpath).  Only a
	 fingerprint needs the whole string read.  */
      if (*path == '\0')
	problem = "for an empty search path";
      else if (notes.tag != 0)
	{
	  size_t length = strlen (path);
	  if (length != notes.length
	      || ldcache_xxh64 (path, length) != notes.hash)
	    problem = "stale";
	}
    }

  if (problem != NULL)
    {
      if (__glibc_unlikely (GLRO(dl_debug_mask) & DL_DEBUG_LIBS))
	_dl_debug_printf ("ldcache: note of %s is %s, ignored\n",
			  DSO_FILENAME (l->l_name), problem);
      return;
    }
  l->l_ldcache = notes.cache;
  l->l_ldcache_tag = tag;
}

const char *
_dl_ldcache_lookup (struct link_map *l, int tag, const char *name)
{
  if (l->l_ldcache_tag == 0)
    ldcache_init (l);
  if (l->l_ldcache_tag != tag)
    return NULL;

  const char *paths = ldcache_find (l->l_ldcache, name);
  if (__glibc_unlikely (GLRO(dl_debug_mask) & DL_DEBUG_LIBS))
    _dl_debug_printf (paths != NULL
		      ? "  ldcache: using note of file=%s\n"
		      : "  ldcache: no entry in note of file=%s\n",
		      DSO_FILENAME (l->l_name));
  return paths;
}

#endif /* !LDCACHE_STANDALONE */

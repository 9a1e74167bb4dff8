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

#ifndef _DL_LDCACHE_H
#define _DL_LDCACHE_H

#include <link.h>

/* Return the path list that the ldcache note of L records for the
   soname NAME, if that note may replace L's search step TAG (DT_RUNPATH
   or DT_RPATH); otherwise NULL.  The list is a NUL-terminated string of
   ':'-separated entries, "=FILE" or "?DIR", inside L's mapped note.  */
#ifdef SHARED
extern const char *_dl_ldcache_lookup (struct link_map *l, int tag,
				       const char *name) attribute_hidden;
#else
/* Static dlopen does not use the cache.  */
static inline const char *
_dl_ldcache_lookup (struct link_map *l, int tag, const char *name)
{
  return NULL;
}
#endif

#endif /* dl-ldcache.h */

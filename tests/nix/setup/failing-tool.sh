#!/bin/sh
# Stands in for the ldcache tool: fails whatever it is asked, as the tool does on an I/O error.
echo "failing-tool: $*" >&2
exit 1

#!/usr/bin/env bash
# Makes a small Nix-like store under DIR to try `ldcache` on: eight libraries, each in its own
# store path and each needing the one before, and a program needing all of them, with the long
# DT_RUNPATHs Nix's linker wrapper writes (every dependency's lib directory, most of them holding
# none of the libraries a file needs). Needs gcc.
#
# Usage: examples/nix-like-store.sh DIR; then, e.g.
#   ldcache explain --cache off DIR/store/*-app-1.0/bin/app     the stock loader's storm
#   ldcache embed --store-dir DIR/store DIR/store                the notes
#   ldcache explain DIR/store/*-app-1.0/bin/app                 the patched loader: none
set -euo pipefail
dir=${1:?usage: examples/nix-like-store.sh DIR}
store=$(mkdir -p "$dir/store" && cd "$dir/store" && pwd)
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT

# A store directory for NAME: a hash-like prefix, as Nix names them.
path_of() { echo "$store/$(printf %s "$1" | sha256sum | cut -c1-32)-$1-1.0"; }

# The C library is a store path too, last on every run path, as Nix's linker wrapper puts it
# (here a link to this system's).
libc=$(path_of glibc)/lib
mkdir -p "$libc"
ln -sfn "$(gcc -print-file-name=libc.so.6)" "$libc/libc.so.6"

# Dependencies that hold no library the files need (headers, data), as run paths often name.
runpath=()
for n in $(seq 1 12); do
    mkdir -p "$(path_of "data$n")/lib"
    runpath+=("$(path_of "data$n")/lib")
done

previous=""
for n in $(seq 1 8); do
    lib=$(path_of "lib$n")/lib
    mkdir -p "$lib"
    echo "int f$n (void) { return $n${previous:+ + f$((n - 1)) ()}; }" >"$src/l$n.c"
    [ -z "$previous" ] || echo "int f$((n - 1)) (void);" | cat - "$src/l$n.c" >"$src/l$n.tmp"
    [ -z "$previous" ] || mv "$src/l$n.tmp" "$src/l$n.c"
    # Each library's run path: the data directories and its dependency, in front of itself.
    gcc -shared -fPIC -o "$lib/lib$n.so" "$src/l$n.c" -Wl,-soname,"lib$n.so" \
        ${previous:+-L"$previous" -l$((n - 1))} \
        -Wl,--enable-new-dtags,-rpath,"$(IFS=:; echo "${runpath[*]}")${previous:+:$previous}:$libc"
    previous=$lib
    runpath=("$lib" "${runpath[@]}")
done

app=$(path_of app)/bin
mkdir -p "$app"
{
    for n in $(seq 1 8); do echo "int f$n (void);"; done
    echo '#include <stdio.h>'
    printf '%s\n' 'int main (void) { printf ("%d\n", f8 ()); return 0; }'
} >"$src/app.c"
links=()
for n in $(seq 1 8); do links+=(-L"$(path_of "lib$n")/lib" -l"$n"); done
gcc -o "$app/app" "$src/app.c" "${links[@]}" \
    -Wl,--enable-new-dtags,-rpath,"$(IFS=:; echo "${runpath[*]}"):$libc"
"$app/app" >/dev/null
echo "$app/app"

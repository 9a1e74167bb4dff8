//! Finding the files to process: every regular file under the given paths, each inode once, in
//! path order, with its other names in the tree. A given path that is a symbolic link is followed;
//! symbolic links inside are not.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::replace::is_temporary_name;

/// A regular file: its first name in path order, and its other names (hard links) in the tree.
pub struct Found {
    pub path: PathBuf,
    pub links: Vec<PathBuf>,
}

/// The regular files under `roots`, each inode once, in path order.
pub fn regular_files(roots: &[PathBuf]) -> Result<Vec<Found>, Error> {
    let mut by_inode: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
    for root in roots {
        // A symbolic link given as a root is followed, to a file as to a directory: it was named.
        let root = if root.is_symlink() {
            std::fs::canonicalize(root).map_err(Error::io(root))?
        } else {
            root.clone()
        };
        let kind = std::fs::metadata(&root)
            .map_err(Error::io(&root))?
            .file_type();
        if !kind.is_dir() && !kind.is_file() {
            return Err(Error::Io {
                path: root,
                error: io::Error::other("not a regular file or directory"),
            });
        }
        let walk = walkdir::WalkDir::new(&root)
            .follow_links(false)
            .sort_by_file_name();
        for entry in walk {
            let entry = entry.map_err(|e| match e.path().map(Path::to_path_buf) {
                Some(path) => Error::Io {
                    path,
                    error: e.into(),
                },
                None => Error::Other(e.to_string()),
            })?;
            // Not files: nor the new version of a file another run is putting in place.
            if !entry.file_type().is_file() || is_temporary_name(entry.file_name()) {
                continue;
            }
            let meta = entry.metadata().map_err(|e| Error::Io {
                path: entry.path().to_path_buf(),
                error: e.into(),
            })?;
            by_inode
                .entry((meta.dev(), meta.ino()))
                .or_default()
                .push(entry.into_path());
        }
    }
    let mut found: Vec<Found> = by_inode
        .into_values()
        .map(|mut names| {
            names.sort();
            names.dedup();
            let path = names.remove(0);
            Found { path, links: names }
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

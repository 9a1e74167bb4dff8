//! Finding the files to process: every regular file under the given paths (symbolic links are not
//! followed), each inode once, in path order.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The regular files under `roots`, one path per inode (the first in path order).
pub fn regular_files(roots: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut by_inode: BTreeMap<(u64, u64), PathBuf> = BTreeMap::new();
    for root in roots {
        let walk = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name();
        for entry in walk {
            let entry = entry.map_err(|e| e.to_string())?;
            if !entry.file_type().is_file() {
                continue;
            }
            let meta = entry
                .metadata()
                .map_err(|e| format!("{}: {e}", entry.path().display()))?;
            let path = entry.into_path();
            by_inode
                .entry((meta.dev(), meta.ino()))
                .and_modify(|first| {
                    if path < *first {
                        *first = path.clone();
                    }
                })
                .or_insert(path);
        }
    }
    let mut paths: Vec<PathBuf> = by_inode.into_values().collect();
    paths.sort();
    Ok(paths)
}

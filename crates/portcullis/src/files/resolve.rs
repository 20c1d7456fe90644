//! From a request path to a file under the root: percent-decoded, only plain names (no `..`,
//! no absolute parts), dotfiles refused unless allowed (`.well-known` always passes), and, on a
//! miss, symlinks that lead out of the root refused unless followed.

use std::path::{Component, Path, PathBuf};

/// The file (or directory) `request_path` names under `root`, or `None` when it may not be
/// served.
pub(crate) fn resolve(root: &Path, request_path: &str, dotfiles: bool) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(request_path.trim_start_matches('/'))
        .decode_utf8()
        .ok()?;
    if decoded.contains('\0') {
        return None;
    }
    let mut path = root.to_path_buf();
    for component in Path::new(&*decoded).components() {
        match component {
            Component::Normal(name) => {
                let name_str = name.to_str()?;
                if !dotfiles && name_str.starts_with('.') && name_str != ".well-known" {
                    return None;
                }
                path.push(name);
            }
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(path)
}

/// Whether `path` (which exists) stays under `root_canonical` once symlinks are followed.
pub(crate) fn inside_root(path: &Path, root_canonical: &Path) -> bool {
    std::fs::canonicalize(path).is_ok_and(|real| real.starts_with(root_canonical))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_only() {
        let root = Path::new("/srv");
        assert_eq!(
            resolve(root, "/a%20b/c.txt", false),
            Some(PathBuf::from("/srv/a b/c.txt"))
        );
        assert_eq!(resolve(root, "/", false), Some(PathBuf::from("/srv")));
        assert_eq!(resolve(root, "/../etc/passwd", false), None);
        assert_eq!(resolve(root, "/a/%2e%2e/%2e%2e/etc", false), None);
        assert_eq!(resolve(root, "/%00", false), None);
        assert_eq!(resolve(root, "/.env", false), None);
        assert_eq!(resolve(root, "/a/.git/config", false), None);
        assert_eq!(
            resolve(root, "/.env", true),
            Some(PathBuf::from("/srv/.env"))
        );
        assert_eq!(
            resolve(root, "/.well-known/acme-challenge/x", false),
            Some(PathBuf::from("/srv/.well-known/acme-challenge/x"))
        );
    }
}

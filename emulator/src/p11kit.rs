//! Registration with p11-kit, so every p11-kit-aware program (GnuTLS's `p11tool`, `p11-kit
//! list-modules`, GLib, anything loading `p11-kit-proxy.so`) finds kilt's module without being
//! told its path: one module file, `kilt.module`, with a `module:` line (pkcs11.conf(5), "MODULE
//! CONFIGURATION"), per user in `~/.config/pkcs11/modules/` or system-wide in
//! `/etc/pkcs11/modules/`.

use std::path::{Path, PathBuf};

/// The file's name; p11-kit takes the module's name from it ("kilt").
pub const FILE_NAME: &str = "kilt.module";

/// The system-wide folder p11-kit reads module files from (beside the packages' ones in
/// `/usr/share/p11-kit/modules/`, which belong to the package manager).
pub const SYSTEM_DIR: &str = "/etc/pkcs11/modules";

/// The per-user folder under `home`.
pub fn user_dir(home: &Path) -> PathBuf {
    home.join(".config/pkcs11/modules")
}

/// Whether this process runs as root, for which p11-kit skips the per-user configuration
/// ("skipping user config in program running as root").
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// What the module file says.
pub fn module_file(module: &Path) -> String {
    format!(
        "# kilt: the emulated JaCarta PKI (written by `kilt-token register`; \
         `kilt-token unregister` removes it)\nmodule: {}\n",
        module.display()
    )
}

/// Writes `dir/kilt.module` naming `module` (replacing an older registration); its path.
pub fn register(dir: &Path, module: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(FILE_NAME);
    // Written aside and renamed, so p11-kit never reads half a file.
    let partial = dir.join(format!(".{FILE_NAME}.partial"));
    std::fs::write(&partial, module_file(module))?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// Removes `dir/kilt.module`; its path when there was one.
pub fn unregister(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    let path = dir.join(FILE_NAME);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(Some(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_writes_one_module_line_and_unregister_takes_it_away() {
        let home = tempfile::tempdir().unwrap();
        let dir = user_dir(home.path());
        assert!(dir.ends_with(".config/pkcs11/modules"));
        let module = Path::new("/opt/kilt/libkilt_pkcs11.so");
        let path = register(&dir, module).unwrap();
        assert_eq!(path, dir.join("kilt.module"));
        let text = std::fs::read_to_string(&path).unwrap();
        let settings: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(settings, ["module: /opt/kilt/libkilt_pkcs11.so"]);
        // Again with another build: replaced, nothing left aside.
        register(&dir, Path::new("/other/libkilt_pkcs11.so")).unwrap();
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("module: /other/")
        );
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        assert_eq!(unregister(&dir).unwrap(), Some(path.clone()));
        assert!(!path.exists());
        assert_eq!(unregister(&dir).unwrap(), None);
    }

    #[test]
    fn a_registration_that_cannot_be_removed_is_an_error_not_absent() {
        let home = tempfile::tempdir().unwrap();
        let dir = user_dir(home.path());
        std::fs::create_dir_all(dir.join(FILE_NAME)).unwrap();
        assert!(unregister(&dir).is_err());
    }

    #[test]
    fn root_is_who_id_says() {
        let out = std::process::Command::new("id").arg("-u").output().unwrap();
        let uid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(running_as_root(), uid == "0", "id -u: {uid}");
    }
}

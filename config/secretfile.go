package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Secrets from files. A secret key's value (intake_key, public_token,
// private_token, an http output's header values) may contain, besides
// ${ENV}:
//
//	${file:PATH}        the content of the file PATH (relative to the
//	                    configuration's directory), trailing newlines trimmed
//	${credential:NAME}  the same, of $CREDENTIALS_DIRECTORY/NAME: a systemd
//	                    credential (LoadCredential=NAME:FILE in the unit)
//
// They are allowed only in secret keys: elsewhere a value is shown by
// check and in logs, and a file's content has no business there. A file
// that cannot be read is a problem on the key's line; a ${file:} file that
// its group or others can read (a credential file that others can read:
// its group is systemd's business) gives a warning. No message quotes the
// content, and every message about a key whose value came from a file
// says so and hides it, as for ${ENV}.

// secretKeys names the keys that take ${file:} and ${credential:}.
const secretKeys = "intake_key, public_token, private_token and headers values"

// maxSecretFile bounds what one secret file may hold.
const maxSecretFile = 64 << 10

// secretRef splits expr, the text between "${" and "}", into "file" or
// "credential" and what follows the colon. "${file:-x}" stays what it was
// before files: the variable file, with a default.
func secretRef(expr string) (kind, ref string, ok bool) {
	for _, k := range []string{"file", "credential"} {
		if r, ok := strings.CutPrefix(expr, k+":"); ok && !strings.HasPrefix(r, "-") {
			return k, r, true
		}
	}
	return "", "", false
}

// readSecretRef returns the secret that ${kind:ref} in the value of the key
// at path names. Its errors name the file, never its content.
func (d *decoder) readSecretRef(path, kind, ref string) (string, error) {
	var file string
	mask := os.FileMode(0o077) // group or others
	switch kind {
	case "file":
		if ref == "" {
			return "", errors.New("${file:} names no file (write ${file:/etc/dtrelay/intake-key})")
		}
		file = ref
		if d.dir != "" && !filepath.IsAbs(file) {
			file = filepath.Join(d.dir, file)
		}
	case "credential":
		if ref == "" || ref == "." || ref == ".." || strings.ContainsAny(ref, "/\x00") {
			return "", errors.New("${credential:NAME} wants the name of a credential, as in LoadCredential=NAME:FILE (no \"/\")")
		}
		dir, _ := d.lookup("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return "", fmt.Errorf("${credential:%s}: CREDENTIALS_DIRECTORY is not set: systemd sets it for a unit with LoadCredential=%s:FILE; "+
				"outside systemd, set it to a directory holding a file %s", ref, ref, ref)
		}
		file = filepath.Join(dir, ref)
		mask = 0o007 // others: systemd makes the directory the unit's own
	}
	s, mode, err := readSecretFile(file)
	if err != nil {
		return "", err
	}
	if m := mode.Perm(); m&mask != 0 {
		who := "group or others"
		if mask == 0o007 {
			who = "others"
		}
		d.warnf(path, "secret file %s has mode %04o: the secret is open to %s; "+
			"make it readable by the user dtrelay runs as only (chmod 600)", quote(file), m, who)
	}
	return s, nil
}

// readSecretFile reads a secret from the regular file name, at most
// maxSecretFile bytes, without its trailing CR and LF, and returns it with
// the file's mode.
func readSecretFile(name string) (string, os.FileMode, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", 0, fmt.Errorf("cannot read secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("cannot read secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("secret file %s is not a regular file", quote(name))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", 0, fmt.Errorf("cannot read secret file %s: %w", quote(name), err)
	}
	if len(b) > maxSecretFile {
		return "", 0, fmt.Errorf("secret file %s is larger than %s: not a key or token", quote(name), Size(maxSecretFile))
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", 0, fmt.Errorf("secret file %s is empty", quote(name))
	}
	return s, fi.Mode(), nil
}

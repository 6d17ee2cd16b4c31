package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// devSecretFile is the file of --data-dir where --dev keeps the secret it
// generated, so the tokens it printed (and the links holding them) still
// work after a restart.
const devSecretFile = "dev-secret"

// devSecretBytes is the length of a generated secret: 24 random bytes (192
// bits, as hex 48 characters) is well above HS256's 128-bit floor.
const devSecretBytes = 24

// devSecretPath is where --dev keeps its secret under dataDir.
func devSecretPath(dataDir string) string {
	return filepath.Join(dataDir, devSecretFile)
}

// devSecret returns the secret --dev runs with when no --secret is given:
// the one kept in dataDir by an earlier start, or a new one, then kept
// there. The file is made once, mode 0600, in a directory made 0700 if it
// is missing; it appears whole or not at all (written to a temporary file,
// then linked in place), so two starts racing agree on one secret. A file
// with nothing in it (a copy gone wrong) gets a new secret; its mode is
// narrowed to 0600 if it was wider. created says whether it is new.
func devSecret(dataDir string) (secret string, created bool, err error) {
	path := devSecretPath(dataDir)
	for attempt := 0; attempt < 2; attempt++ {
		s, err := readDevSecret(path)
		if err == nil {
			return s, false, nil
		}
		if errors.Is(err, errDevSecretEmpty) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", false, err
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", false, err
		}
		s, err = writeDevSecret(dataDir, path)
		if err == nil {
			return s, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", false, err
		}
		// Another start linked its secret first: read that one.
	}
	return "", false, fmt.Errorf("%s: could neither read nor create it", path)
}

var errDevSecretEmpty = errors.New("empty")

// readDevSecret reads a kept secret; fs.ErrNotExist when there is none.
func readDevSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s: %w", path, errDevSecretEmpty)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return "", fmt.Errorf("%s is readable by others and could not be made 0600: %w", path, err)
		}
	}
	return s, nil
}

// writeDevSecret makes a new secret and links it at path; fs.ErrExist when
// a file is there already.
func writeDevSecret(dataDir, path string) (string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	b := make([]byte, devSecretBytes)
	_, _ = rand.Read(b) // crypto/rand never fails (it crashes the program instead)
	s := hex.EncodeToString(b)
	f, err := os.CreateTemp(dataDir, devSecretFile+".tmp-*") // mode 0600
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.WriteString(s + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if err := os.Link(tmp, path); err != nil {
		return "", err
	}
	if d, err := os.Open(dataDir); err == nil {
		_ = d.Sync() // the new name survives a power cut
		_ = d.Close()
	}
	return s, nil
}

// keptDevSecret reports where secret is kept, if it is the one --dev keeps
// in dataDir ("" otherwise: a --secret was given).
func keptDevSecret(dataDir, secret string) string {
	s, err := readDevSecret(devSecretPath(dataDir))
	if err != nil || s != secret {
		return ""
	}
	return devSecretPath(dataDir)
}

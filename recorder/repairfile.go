package recorder

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// repairSuffix names the copy RepairFile writes before renaming it over
// the original. It does not end in .webm, so no listing ever takes it for
// a recording; one left by a crash is overwritten by the next repair.
const repairSuffix = ".repair"

// RepairFile repairs the recording at path (see Repair) in place: the
// repaired copy is written to path+".repair", synced, and renamed over
// path, so whenever it stops (an error, a crash) path holds either the
// original or the repaired file. On error the original is untouched and
// the copy removed.
func RepairFile(path string) (res Repaired, err error) {
	src, err := os.Open(path)
	if err != nil {
		return Repaired{}, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return Repaired{}, err
	}
	// Check before creating anything: most failures are a file that
	// cannot be repaired.
	plan, err := planRepair(src, st.Size())
	if err != nil {
		return Repaired{}, err
	}
	tmp := path + repairSuffix
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return Repaired{}, fmt.Errorf("recorder: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(dst, writeBuffer)
	err = plan.write(w, src)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = dst.Sync() // the data is on disk before the name points at it
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Repaired{}, fmt.Errorf("recorder: writing %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return Repaired{}, fmt.Errorf("recorder: %w", err)
	}
	return plan.result, syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

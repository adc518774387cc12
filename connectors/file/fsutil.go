package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// createTemp creates a new file next to path whose name starts with a dot, so
// that listings (Tables, part files, checkpoints) never mistake it for data.
// It uses the process umask like any other file ferry writes.
func createTemp(path string) (*os.File, error) {
	dir, base := filepath.Split(path)
	for range 100 {
		name := filepath.Join(dir, "."+base+tmpInfix+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create temporary file for %s: %w", path, err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("create temporary file for %s: no free name", path)
}

// commitTemp makes f's content durable and renames it over path. It does not
// fsync the directory: the caller does, once for all the renames it makes.
// f is closed and, on failure, removed.
func commitTemp(f *os.File, path string) error {
	err := f.Sync()
	if err != nil {
		err = fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	if cerr := f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close %s: %w", f.Name(), cerr)
	}
	if err == nil {
		if rerr := os.Rename(f.Name(), path); rerr != nil {
			err = fmt.Errorf("rename %s to %s: %w", f.Name(), path, rerr)
		}
	}
	if err != nil {
		if rmErr := os.Remove(f.Name()); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			err = errors.Join(err, rmErr)
		}
	}
	return err
}

// abortTemp closes and removes a temporary file after a failure, joining any
// error from the cleanup to err.
func abortTemp(f *os.File, err error) error {
	if cerr := f.Close(); cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	if rerr := os.Remove(f.Name()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// writeTempAndRename writes data to path atomically but leaves the directory
// fsync to the caller.
func writeTempAndRename(path string, data []byte) error {
	f, err := createTemp(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return abortTemp(f, fmt.Errorf("write %s: %w", f.Name(), err))
	}
	return commitTemp(f, path)
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new content, never a mix, and the new content is durable once it
// returns.
func writeFileAtomic(path string, data []byte) error {
	if err := writeTempAndRename(path, data); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes the directory's entries (created, renamed, removed files)
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s to fsync it: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		return errors.Join(fmt.Errorf("fsync directory %s: %w", dir, err), d.Close())
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("close directory %s: %w", dir, err)
	}
	return nil
}

// removeIfExists removes path; a missing file is not an error.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// removeTemps removes leftover temporary files of base in dir (a crash between
// creating and renaming one).
func removeTemps(dir, base string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("list %s: %w", dir, err)
	}
	prefix := "." + base + tmpInfix
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			if err := removeIfExists(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeTempFiles removes the temporary files a crash left in dir.
func removeTempFiles(dir string) error {
	names, err := fileNames(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, ".") && strings.Contains(n, tmpInfix) {
			if err := removeIfExists(filepath.Join(dir, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyCtx copies src to dst in chunks, checking ctx between them.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		r, rerr := src.Read(buf)
		if r > 0 {
			w, werr := dst.Write(buf[:r])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

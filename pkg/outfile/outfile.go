// Package outfile writes output files whole or not at all: a reader of the
// path sees the old file or the new one, never part of one, and an error,
// a full disk or a cancelled context leaves nothing behind. Nothing in
// go.mod offers this (github.com/google/renameio would, but a dozen lines
// do not justify a dependency), so this is the one place that does it for
// report, plot and compare.
package outfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFile calls write with a temporary file in path's directory and, if
// it succeeds and ctx is not done, syncs the file and renames it to path
// (mode 0644). Otherwise the temporary file is removed and the error (ctx's
// error when it was cancelled) returned, wrapped with path.
func WriteFile(ctx context.Context, path string, write func(io.Writer) error) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("writing %s: %w", path, err)
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := finish(f); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// finish makes f's content durable and readable by others, and closes it.
func finish(f *os.File) error {
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// MkdirAll is os.MkdirAll that can be undone: undo removes the directories
// it created, deepest first, as long as they are empty, so an output that
// is not written after all leaves no new folder either.
func MkdirAll(dir string) (undo func(), err error) {
	var created []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || !errors.Is(err, os.ErrNotExist) {
			break
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	undo = func() {
		for _, d := range created { // deepest first
			if os.Remove(d) != nil {
				return // not empty (or gone): leave it and its parents
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		undo()
		return func() {}, err
	}
	return undo, nil
}

// Dir stages files for a directory: they are written into a hidden
// temporary directory inside it and moved into place together by Commit,
// so an error or an interrupt before Commit leaves no new file in it.
type Dir struct {
	dir, tmp string
	undoDir  func() // removes the directories NewDir created, if empty
	names    []string
	done     bool
}

// NewDir creates dir if needed and a staging directory in it.
func NewDir(dir string) (*Dir, error) {
	undo, err := MkdirAll(dir)
	if err != nil {
		return nil, fmt.Errorf("creating output directory: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".coldbench-tmp-")
	if err != nil {
		undo()
		return nil, fmt.Errorf("creating output directory: %w", err)
	}
	return &Dir{dir: dir, tmp: tmp, undoDir: undo}, nil
}

// WriteFile stages name (a base name) with data.
func (d *Dir) WriteFile(name string, data []byte) error {
	if d.done {
		return fmt.Errorf("staging %s: already committed or aborted", name)
	}
	f, err := os.OpenFile(filepath.Join(d.tmp, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(d.dir, name), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", filepath.Join(d.dir, name), err)
	}
	if err := finish(f); err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(d.dir, name), err)
	}
	d.names = append(d.names, name)
	return nil
}

// Commit moves the staged files into the directory (a rename each, which
// needs no space) and returns their paths.
func (d *Dir) Commit() ([]string, error) {
	if d.done {
		return nil, errors.New("outfile: Commit after Commit or Abort")
	}
	var paths []string
	for _, name := range d.names {
		p := filepath.Join(d.dir, name)
		if err := os.Rename(filepath.Join(d.tmp, name), p); err != nil {
			d.Abort()
			return paths, fmt.Errorf("moving %s into place: %w", p, err)
		}
		paths = append(paths, p)
	}
	d.done = true
	return paths, os.RemoveAll(d.tmp)
}

// Abort removes the staged files, and the directory if NewDir created it
// and it is empty. It does nothing after Commit.
func (d *Dir) Abort() {
	if d.done {
		return
	}
	d.done = true
	os.RemoveAll(d.tmp)
	d.undoDir()
}

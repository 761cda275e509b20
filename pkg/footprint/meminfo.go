package footprint

import "fmt"

// MemInfo is the node's memory from /proc/meminfo, in bytes; nil where the
// kernel has no such line (MemAvailable needs Linux 3.14).
type MemInfo struct {
	MemTotalBytes *int64
	MemFreeBytes  *int64
	// MemAvailableBytes is the kernel's estimate of what new work can use
	// without swapping (free plus reclaimable cache): gVisor's way of
	// measuring an instance is the drop in it divided by the instances.
	MemAvailableBytes *int64
}

// ReadMemInfo reads /proc/meminfo.
func (fsys FS) ReadMemInfo() (MemInfo, error) {
	path := fsys.path("proc", "meminfo")
	data, err := readFile(path)
	if err != nil {
		return MemInfo{}, err
	}
	values, err := parseKBLines(data, "MemTotal", "MemFree", "MemAvailable")
	if err != nil {
		return MemInfo{}, fmt.Errorf("parsing %s: %w", path, err)
	}
	return MemInfo{
		MemTotalBytes:     values["MemTotal"],
		MemFreeBytes:      values["MemFree"],
		MemAvailableBytes: values["MemAvailable"],
	}, nil
}

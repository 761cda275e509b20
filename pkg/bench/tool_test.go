package bench

import (
	"runtime/debug"
	"testing"
)

func TestToolInfo(t *testing.T) {
	const rev = "a0048e4c6d1b3f1e9a7e5c2d4b6f8a0c1e3d5f70"
	vcs := func(modified string) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}}
	}
	for _, tc := range []struct {
		name            string
		version, commit string
		bi              *debug.BuildInfo
		wantV, wantC    string
	}{
		{"ldflags", "v1.2.0-3-ga0048e4-dirty", rev, vcs("true"), "v1.2.0-3-ga0048e4-dirty", rev},
		{"ldflags win over build info", "v1.2.0", "feedface", vcs("false"), "v1.2.0", "feedface"},
		{"go build in a checkout", "", "", vcs("false"), "dev", rev},
		{"go build of uncommitted changes", "", "", vcs("true"), "dev+dirty", rev},
		{"go1.24+ pseudo-version", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261206053900-a0048e4c6d1b+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}}, "v0.0.0-20261206053900-a0048e4c6d1b+dirty", rev},
		{"go install of a tag", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0"}}, "v1.3.0", ""},
		{"no build info", "", "", nil, "dev", ""},
	} {
		got := toolInfo(tc.version, tc.commit, tc.bi)
		if got.Version != tc.wantV || got.Commit != tc.wantC || got.Name != "coldbench" {
			t.Errorf("%s: got %+v, want version %q commit %q", tc.name, got, tc.wantV, tc.wantC)
		}
	}
}

// The header records the commit: Tool() carries the stamped one.
func TestHeaderToolCarriesCommit(t *testing.T) {
	prevV, prevC := Version, Commit
	Version, Commit = "v0.9.0-1-gabc", "abcdef0123456789abcdef0123456789abcdef01"
	defer func() { Version, Commit = prevV, prevC }()
	if got := Tool(); got.Version != Version || got.Commit != Commit {
		t.Errorf("Tool() = %+v", got)
	}
}

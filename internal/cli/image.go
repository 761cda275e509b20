package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/coldbench/coldbench/pkg/image"
)

func newImageCmd(log *slog.Logger) *cobra.Command {
	cmd := groupCmd(&cobra.Command{
		Use:   "image",
		Short: "Build the test functions' OCI images (no Docker, no registry needed)",
	})
	cmd.AddCommand(newImageBuildCmd(log), newImageListCmd())
	return cmd
}

type imageBuildFlags struct {
	all          bool
	functionsDir string
	workDir      string
	output       string
	push         string
	insecure     bool
	uid          int
	ref          string
	binary       string
}

func newImageBuildCmd(log *slog.Logger) *cobra.Command {
	f := &imageBuildFlags{}
	cmd := &cobra.Command{
		Use:   "build [FUNCTION...]",
		Short: "Build function images into a tarball for `ctr images import`, or push them to a registry",
		Example: `  coldbench image build --all -o images.tar && ctr -n k8s.io images import images.tar
  coldbench image build go-static --uid 1000 --push registry.local:5000/coldbench --insecure
  coldbench image build --binary ./myfn --ref dev.local/myfn:v1 -o myfn.tar
  coldbench image build coldbench -o coldbench-image.tar   # coldbench itself, for deploy/job.yaml
  coldbench image build coldbench-agent -o agent-image.tar # its node agent, for deploy/agent.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, args, log)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.all, "all", false, "build every function (see `coldbench image list`; not the extras crash, coldbench and coldbench-agent)")
	fl.StringVar(&f.functionsDir, "functions-dir", "functions", "directory holding the functions' sources")
	fl.StringVar(&f.workDir, "work-dir", "", "where compiled binaries go (default: a temporary directory)")
	fl.StringVarP(&f.output, "output", "o", "", "write one tarball (OCI layout + docker manifest) to this file")
	fl.StringVar(&f.push, "push", "", "push to this registry repository prefix instead, e.g. registry.local:5000/coldbench")
	fl.BoolVar(&f.insecure, "insecure", false, "with --push: plain HTTP registry")
	fl.IntVar(&f.uid, "uid", -1, "user and group id the function runs as (default: each function's own; Knative's images need 65532)")
	fl.StringVar(&f.ref, "ref", "", "image reference (one function, or --binary)")
	fl.StringVar(&f.binary, "binary", "", "package this static executable instead of building a known function (needs --ref)")
	return cmd
}

func (f *imageBuildFlags) run(cmd *cobra.Command, args []string, log *slog.Logger) error {
	if (f.output == "") == (f.push == "") {
		return usageError(fmt.Errorf("give exactly one of --output FILE.tar or --push REGISTRY/PREFIX"))
	}
	if f.uid < -1 || f.uid > 1<<31-1 {
		return usageError(fmt.Errorf("--uid %d: must be a user id between 0 and 2147483647", f.uid))
	}
	type job struct {
		fn     image.Function
		binary string
	}
	var jobs []job
	switch {
	case f.binary != "":
		if f.ref == "" || len(args) > 0 || f.all {
			return usageError(fmt.Errorf("--binary packages one executable: give --ref and no function names or --all"))
		}
		uid := image.DefaultUID
		jobs = append(jobs, job{fn: image.Function{Name: filepath.Base(f.binary), DefaultRef: f.ref, UID: uid, Port: 8080}, binary: f.binary})
	case f.all:
		if len(args) > 0 {
			return usageError(fmt.Errorf("give function names or --all, not both"))
		}
		for _, fn := range image.Functions {
			jobs = append(jobs, job{fn: fn})
		}
	case len(args) == 0:
		return usageError(fmt.Errorf("name the functions to build (%s) or pass --all", functionNames()))
	default:
		for _, a := range args {
			fn, ok := image.LookupFunction(a)
			if !ok {
				return usageError(fmt.Errorf("unknown function %q; known: %s", a, functionNames()))
			}
			jobs = append(jobs, job{fn: fn})
		}
	}
	if f.ref != "" && len(jobs) != 1 {
		return usageError(fmt.Errorf("--ref names one image; build one function at a time with it"))
	}
	work := f.workDir
	if work == "" {
		tmp, err := os.MkdirTemp("", "coldbench-image-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		work = tmp
	}
	imgs := map[string]v1.Image{}
	for _, j := range jobs {
		bin := j.binary
		if bin == "" {
			var err error
			if bin, err = image.BuildFunction(cmd.Context(), j.fn.Name, f.functionsDir, work); err != nil {
				return err
			}
		}
		spec := j.fn.Spec(bin)
		if f.ref != "" {
			spec.Ref = f.ref
		}
		if f.uid >= 0 && j.fn.Name != "pause" {
			spec.UID, spec.GID, spec.Root = f.uid, f.uid, f.uid == 0
		}
		if f.push != "" && f.ref == "" {
			// Keep the name after the local prefix: coldbench.local/fn-go:v1
			// becomes PREFIX/fn-go:v1.
			spec.Ref = strings.TrimSuffix(f.push, "/") + "/" + spec.Ref[strings.LastIndex(spec.Ref, "/")+1:]
		}
		img, err := image.Build(spec)
		if err != nil {
			return fmt.Errorf("building image %s: %w", spec.Ref, err)
		}
		imgs[spec.Ref] = img
		d, _ := img.Digest()
		log.Info("built image", "ref", spec.Ref, "digest", d.String(), "uid", spec.UID)
	}
	if f.push != "" {
		for ref, img := range imgs {
			if err := image.PushContext(cmd.Context(), ref, img, f.insecure); err != nil {
				return fmt.Errorf("pushing %s: %w", ref, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "pushed", ref)
		}
		return nil
	}
	if dir := filepath.Dir(f.output); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("--output: creating folder: %w", err)
		}
	}
	if err := image.WriteTarball(f.output, imgs); err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %d image(s) to %s; import with: ctr -n k8s.io images import %s\n", len(imgs), f.output, f.output)
	return nil
}

func functionNames() string {
	var n []string
	for _, f := range append(image.Functions[:len(image.Functions):len(image.Functions)], image.Extras...) {
		n = append(n, f.Name)
	}
	return strings.Join(n, ", ")
}

func newImageListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the functions coldbench can build",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FUNCTION\tLANGUAGE\tDEFAULT IMAGE\tUID\tPORT\t")
			for _, f := range image.Functions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t\n", f.Name, f.Language, f.DefaultRef, f.UID, f.Port)
			}
			for _, f := range image.Extras {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t(built only when named, not by --all)\n", f.Name, f.Language, f.DefaultRef, f.UID, f.Port)
			}
			return tw.Flush()
		},
	}
}

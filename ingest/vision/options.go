package vision

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/vocab"
)

// Defaults. Each says why.
const (
	// DefaultFPS samples five frames a second: a walking person crosses a
	// doorway camera's view in one to two seconds, so five frames give
	// several chances at a frontal face while two sources still fit on two
	// cores (see BENCHMARKS.md).
	DefaultFPS = 5
	// DefaultThreshold is the similarity below which a face is "unknown".
	// Chosen on the Megamind/messi test set in face_gocv_test.go: held-out
	// faces of enrolled people scored ≥ 0.69, the stranger 0.59 (see the
	// package doc for the formula). Tune it per installation.
	DefaultThreshold = 0.65
	// DefaultCooldown is the de-duplication window: one event per person
	// or plate per camera every ten seconds is what an operator can read.
	DefaultCooldown = 10 * time.Second
	// DefaultCascadeDir is where Debian's opencv-data installs the Haar
	// cascades.
	DefaultCascadeDir = "/usr/share/opencv4/haarcascades"
	// MaxFPS bounds the sampling rate: above it the cost is all decode and
	// de-duplication collapses the extra sightings anyway.
	MaxFPS = 60
	// NoCascade as PlateCascade turns the plate Haar cascade off (the
	// default; the morphological detector still runs).
	NoCascade = "none"
)

// Default cascade paths. DefaultPlateCascade is not loaded unless
// Options.PlateCascade names it.
var (
	DefaultFaceCascade  = filepath.Join(DefaultCascadeDir, "haarcascade_frontalface_default.xml")
	DefaultPlateCascade = filepath.Join(DefaultCascadeDir, "haarcascade_russian_plate_number.xml")
)

// ErrNoOpenCV is returned by New (with sources) and Detect in a binary built
// without the gocv tag.
var ErrNoOpenCV = errors.New("vision: SECUREVISION__INGEST__SOURCES is set but this binary was built without OpenCV (rebuild with -tags gocv)")

// Options configures the camera pipeline. The zero value plus Sources is a
// working configuration.
type Options struct {
	// Sources are the cameras and files, one goroutine each.
	Sources []Source
	// FPS is the sampling rate per source (default DefaultFPS).
	FPS float64
	// GalleryDir holds GALLERY_DIR/<person name>/*.jpg, the seed of the
	// gallery; empty: none.
	GalleryDir string
	// StoreGallery, when set, returns the gallery kept in the store (POST
	// /people/{name}/faces), enrolled beside GalleryDir's at New and at
	// every Reload. An error keeps the previous gallery.
	StoreGallery func() ([]GalleryImage, error)
	// FaceCascade and PlateCascade are Haar cascade XML files. FaceCascade
	// defaults to DefaultFaceCascade. The plate cascade is off by default
	// (empty or NoCascade): it cost as much per frame as all the other
	// stages together and added no plate to the morphological detector's
	// on the TestPlateReading set; set it, e.g. to DefaultPlateCascade,
	// to add its boxes as candidates.
	FaceCascade  string
	PlateCascade string
	// Threshold is the similarity in (0,1) below which a face is "unknown"
	// (default DefaultThreshold).
	Threshold float64
	// Cooldown is the de-duplication window (default DefaultCooldown; a
	// negative value disables de-duplication: one event per sighting).
	Cooldown time.Duration
	// Regions maps a source ID (or "*" for every source) to the plate
	// region reported in plate_read events; see ParseRegions.
	Regions map[string]string
	// Lists fills list_match of plate_read events; nil leaves it to the
	// ingest path (ListMatchSet false).
	Lists ingest.ListMatcher
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Registerer receives the pipeline metrics (nil: not registered).
	Registerer prometheus.Registerer
	// now is the clock (tests); default time.Now.
	now func() time.Time
}

// GalleryImage is one image of the store's gallery.
type GalleryImage struct {
	// ID identifies the image (its face_id) so an unchanged image is not
	// enrolled again at each reload.
	ID     uint64
	Person string
	JPEG   []byte
	// Crop says the image is a face box already (cut from a face_match
	// at its bbox): its descriptor is taken from the whole image, as
	// recognition takes it from a detected box. Otherwise the largest
	// face found in it is enrolled, as for GalleryDir's images.
	Crop bool
}

// withDefaults returns o with zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.FPS == 0 {
		o.FPS = DefaultFPS
	}
	if o.FaceCascade == "" {
		o.FaceCascade = DefaultFaceCascade
	}
	if o.PlateCascade == "" {
		o.PlateCascade = NoCascade
	}
	if o.Threshold == 0 {
		o.Threshold = DefaultThreshold
	}
	if o.Cooldown == 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o
}

// Validate checks the options (after defaults are applied). It does not
// open anything: New reports unreadable cascades and galleries.
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if math.IsNaN(o.FPS) || o.FPS <= 0 || o.FPS > MaxFPS {
		errs = append(errs, fmt.Errorf("vision: fps %v out of range (0, %d]", o.FPS, MaxFPS))
	}
	if math.IsNaN(o.Threshold) || o.Threshold <= 0 || o.Threshold >= 1 {
		errs = append(errs, fmt.Errorf("vision: similarity threshold %v out of range (0, 1)", o.Threshold))
	}
	seen := map[string]bool{}
	for i, s := range o.Sources {
		if err := validateID(s.ID); err != nil {
			errs = append(errs, fmt.Errorf("vision: source %d: %w", i+1, err))
		}
		if strings.TrimSpace(s.URL) == "" {
			errs = append(errs, fmt.Errorf("vision: source %q: empty URL", s.ID))
		}
		if seen[s.ID] {
			errs = append(errs, fmt.Errorf("vision: source %q configured twice", s.ID))
		}
		seen[s.ID] = true
	}
	for id, r := range o.Regions {
		if id != "*" && !seen[id] && len(o.Sources) > 0 {
			errs = append(errs, fmt.Errorf("vision: region for unknown source %q", id))
		}
		if err := validateRegion(r); err != nil {
			errs = append(errs, fmt.Errorf("vision: region for %q: %w", id, err))
		}
	}
	if o.GalleryDir != "" {
		if fi, err := os.Stat(o.GalleryDir); err != nil {
			errs = append(errs, fmt.Errorf("vision: gallery: %w", err))
		} else if !fi.IsDir() {
			errs = append(errs, fmt.Errorf("vision: gallery %s is not a directory", o.GalleryDir))
		}
	}
	return errors.Join(errs...)
}

// region returns the plate region configured for source id.
func (o Options) region(id string) string {
	if r, ok := o.Regions[id]; ok {
		return r
	}
	return o.Regions["*"]
}

// Source is one camera or file.
type Source struct {
	ID  string
	URL string
}

// Kind classifies the URL: "stream" (has a scheme such as rtsp://,
// http://), "device" (a number such as 0, or /dev/video*), or "file"
// (anything else; a file:// prefix is allowed).
func (s Source) Kind() string {
	u := s.URL
	if strings.HasPrefix(u, "file://") {
		return "file"
	}
	if i := strings.Index(u, "://"); i > 0 {
		return "stream"
	}
	if isDeviceIndex(u) || strings.HasPrefix(u, "/dev/video") {
		return "device"
	}
	return "file"
}

// path returns the file path of a file source.
func (s Source) path() string { return strings.TrimPrefix(s.URL, "file://") }

func isDeviceIndex(u string) bool {
	if u == "" || len(u) > 3 {
		return false
	}
	for _, c := range u {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func validateID(id string) error {
	if id == "" {
		return errors.New("empty source id")
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("source id %q is not valid UTF-8", id)
	}
	if n := utf8.RuneCountInString(id); n > vocab.MaxSourceLen {
		return fmt.Errorf("source id %.20q… is %d characters, at most %d allowed", id, n, vocab.MaxSourceLen)
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("source id %q contains the unprintable character %U", id, r)
		}
	}
	return nil
}

func validateRegion(r string) error {
	if !utf8.ValidString(r) {
		return fmt.Errorf("region %q is not valid UTF-8", r)
	}
	if utf8.RuneCountInString(r) > vocab.MaxRegionLen {
		return fmt.Errorf("region %.20q… longer than %d characters", r, vocab.MaxRegionLen)
	}
	for _, c := range r {
		if !unicode.IsPrint(c) {
			return fmt.Errorf("region %q contains the unprintable character %U", r, c)
		}
	}
	return nil
}

// ParseSources parses SECUREVISION__INGEST__SOURCES:
//
//	camera_front_door=rtsp://host/stream;camera_driveway=/videos/drive.mp4
//
// Entries are separated by ';', the ID is everything before the first '='
// (so URLs may contain '='), blanks around IDs and URLs are trimmed and
// empty entries ignored. IDs are 1–128 printable characters and unique.
func ParseSources(s string) ([]Source, error) {
	var out []Source
	seen := map[string]int{}
	err := eachPair(s, "sources", "ID=URL", func(n int, id, url string) error {
		if err := validateID(id); err != nil {
			return fmt.Errorf("vision: sources entry %d: %w", n, err)
		}
		if url == "" {
			return fmt.Errorf("vision: sources entry %d: source %q has an empty URL", n, id)
		}
		if !utf8.ValidString(url) {
			return fmt.Errorf("vision: sources entry %d: URL of %q is not valid UTF-8", n, id)
		}
		if j, dup := seen[id]; dup {
			return fmt.Errorf("vision: sources entry %d: source id %q already used by entry %d", n, id, j)
		}
		seen[id] = n
		out = append(out, Source{ID: id, URL: url})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ParseRegions parses SECUREVISION__INGEST__REGIONS, the plate region of
// each source, in the same syntax as ParseSources:
//
//	camera_driveway=US-CA;camera_gate=EU-DE;*=US-NY
//
// "*" sets the region of every source not named. Regions are at most 64
// bytes of printable text; an ID given twice is an error.
func ParseRegions(s string) (map[string]string, error) {
	out := map[string]string{}
	err := eachPair(s, "regions", "SOURCE_ID=REGION", func(n int, id, region string) error {
		if id != "*" {
			if err := validateID(id); err != nil {
				return fmt.Errorf("vision: regions entry %d: %w", n, err)
			}
		}
		if region == "" {
			return fmt.Errorf("vision: regions entry %d: empty region for %q", n, id)
		}
		if err := validateRegion(region); err != nil {
			return fmt.Errorf("vision: regions entry %d: %w", n, err)
		}
		if _, dup := out[id]; dup {
			return fmt.Errorf("vision: regions entry %d: source %q given twice", n, id)
		}
		out[id] = region
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachPair calls fn, in order, with each ID=VALUE entry of a ';'-separated
// list and its 1-based position: the ID is everything before the first '='
// (so values may contain '='), blanks around both are trimmed and empty
// entries skipped. It stops at the first error; an entry without '=' is
// one, named after list and the wanted form.
func eachPair(s, list, want string, fn func(n int, id, value string) error) error {
	for i, entry := range strings.Split(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, value, ok := strings.Cut(entry, "=")
		if !ok {
			return fmt.Errorf("vision: %s entry %d %q: want %s (entries separated by ';')", list, i+1, entry, want)
		}
		if err := fn(i+1, strings.TrimSpace(id), strings.TrimSpace(value)); err != nil {
			return err
		}
	}
	return nil
}

// DetectOptions configures Detect: one source, processed once.
type DetectOptions struct {
	Source Source
	Options
	// Start is the wall-clock time of the file's first frame (default:
	// when Detect starts); ts_ms = Start + the frame's position.
	Start time.Time
}

// Summary is what Detect found.
type Summary struct {
	// Frames is the number of frames analysed (after sampling); Decoded
	// counts every frame read from the file.
	Frames  int
	Decoded int
	// Events counts appended events by type.
	Events   map[string]int
	Duration time.Duration
}

// String formats the summary for the CLI.
func (s Summary) String() string {
	fps := 0.0
	if s.Duration > 0 {
		fps = float64(s.Frames) / s.Duration.Seconds()
	}
	return fmt.Sprintf("frames analysed: %d (of %d decoded)\nface_match events: %d\nplate_read events: %d\nduration: %s (%.1f analysed frames/s)",
		s.Frames, s.Decoded, s.Events[vocab.FaceMatch], s.Events[vocab.PlateRead], s.Duration.Round(time.Millisecond), fps)
}

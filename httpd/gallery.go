package httpd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/httpx"
	"github.com/securevision/events/internal/vocab"
	"github.com/securevision/events/projections"
)

// The face gallery (GET, POST /people/:name/faces, DELETE
// /people/:name/faces/:face_id). A gallery change is a gallery_change
// event; an add carries its JPEG as the record's blob, so the image is
// stored, backed up and replicated with the log and served by GET
// /events/{face_id}/snapshot.jpg. The recogniser (ingest/vision) enrols
// the store's gallery beside GALLERY_DIR and reloads on every change.

// galleryFacesPath is the route whose POST takes an image/jpeg body
// besides JSON (see guard).
const galleryFacesPath = "/people/:name/faces"

const (
	// maxGalleryPixels bounds the pixel count of an image the server
	// decodes (an upload, or the snapshot a from_event crop is cut from):
	// a 1 MiB JPEG can declare 65535×65535 pixels, and decoding allocates
	// them all. 16 Mpx still takes a phone's photo (4000×3000).
	maxGalleryPixels = 16 << 20
	// galleryCropQuality is the JPEG quality of a from_event crop, a
	// little above the vision snapshots' so re-encoding loses little.
	galleryCropQuality = 90
	// galleryDecodes bounds the images decoded at once (see
	// maxGalleryPixels: each can take tens of MB); more requests wait.
	galleryDecodes = 2
)

// GalleryFaceItem is one face of GET /people/{name}/faces.
type GalleryFaceItem struct {
	projections.GalleryFace
	// ImageURL is the face's image, relative to the API's root.
	ImageURL string `json:"image_url"`
}

// personParam reads :name: 1 to vocab.MaxPersonNameLen characters of
// valid UTF-8. With enrol, "unknown" is refused too: it is what the
// recogniser calls a face nobody's gallery matches.
func personParam(w http.ResponseWriter, ps httprouter.Params, enrol bool) (string, bool) {
	name := ps.ByName("name")
	msg := ""
	switch {
	case name == "" || !utf8.ValidString(name) || strings.TrimSpace(name) == "":
		msg = "Value error, not a person name"
	case utf8.RuneCountInString(name) > vocab.MaxPersonNameLen:
		msg = fmt.Sprintf("Value error, a person name has at most %d characters", vocab.MaxPersonNameLen)
	case enrol && name == "unknown":
		msg = `Value error, "unknown" is the name of unrecognised faces and has no gallery`
	}
	if msg != "" {
		httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"path", "name"}, Type: "value_error", Msg: msg}})
		return "", false
	}
	return name, true
}

func (s *Server) galleryList(w http.ResponseWriter, r *http.Request) {
	name, ok := personParam(w, httprouter.ParamsFromContext(r.Context()), false)
	if !ok {
		return
	}
	faces := s.opts.View.GalleryFaces(name)
	if len(faces) == 0 {
		// A person known from detections has an empty gallery; a name
		// nobody ever saw nor enrolled is not a person.
		a, err := s.opts.View.Person(name)
		if err != nil {
			s.logger.Error("person failed", "err", err)
			httpx.WriteDetail(w, http.StatusInternalServerError, "Event store unavailable")
			return
		}
		if a.Count == 0 {
			httpx.WriteDetail(w, http.StatusNotFound, "Person not found")
			return
		}
	}
	out := make([]GalleryFaceItem, len(faces))
	for i, f := range faces {
		out[i] = GalleryFaceItem{f, "/events/" + strconv.FormatUint(f.FaceID, 10) + "/snapshot.jpg"}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// GalleryRequest is the JSON body of POST /people/{name}/faces: the
// face_match whose snapshot, cropped to its bbox, is enrolled.
type GalleryRequest struct {
	FromEvent *uint64 `json:"from_event"`
}

func (s *Server) galleryAdd(w http.ResponseWriter, r *http.Request) {
	name, ok := personParam(w, httprouter.ParamsFromContext(r.Context()), true)
	if !ok {
		return
	}
	var (
		img  []byte
		from *uint64
	)
	if jpegBodyType(r.Header.Get("Content-Type")) {
		if img, ok = s.readJPEG(w, r); !ok {
			return
		}
	} else {
		var req GalleryRequest
		if !decodeAction(w, r, &req, false) {
			return
		}
		if req.FromEvent == nil {
			httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"body", "from_event"}, Type: "missing",
				Msg: "Field required (or send the face as an image/jpeg body)"}})
			return
		}
		if img, ok = s.cropFromEvent(w, *req.FromEvent); !ok {
			return
		}
		from = req.FromEvent
	}
	payload, _ := json.Marshal(projections.GalleryChange{Op: "add", PersonName: name, FromEvent: from})
	s.appendAction(w, r.Context(), ingest.Action{
		Type: vocab.GalleryChangeCode, TsMs: s.now().UnixMilli(), Source: vocab.OperatorSource,
		Payload: payload, Blob: img,
	}, http.StatusCreated)
}

// galleryFaceParam reads :name and :face_id of a face in that person's
// current gallery, answering 422 or 404 otherwise.
func (s *Server) galleryFaceParam(w http.ResponseWriter, r *http.Request) (string, uint64, bool) {
	ps := httprouter.ParamsFromContext(r.Context())
	name, ok := personParam(w, ps, false)
	if !ok {
		return "", 0, false
	}
	id, err := strconv.ParseUint(ps.ByName("face_id"), 10, 64)
	if err != nil {
		httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"path", "face_id"}, Type: "int_parsing",
			Msg: "Input should be a valid integer, unable to parse string as an integer"}})
		return "", 0, false
	}
	for _, f := range s.opts.View.GalleryFaces(name) {
		if f.FaceID == id {
			return name, id, true
		}
	}
	httpx.WriteDetail(w, http.StatusNotFound, "Face not in this person's gallery")
	return "", 0, false
}

// galleryImage serves a face's image (the same bytes as GET
// /events/{face_id}/snapshot.jpg, found through the person's gallery).
func (s *Server) galleryImage(w http.ResponseWriter, r *http.Request) {
	if _, id, ok := s.galleryFaceParam(w, r); ok {
		s.writeSnapshot(w, id)
	}
}

func (s *Server) galleryDelete(w http.ResponseWriter, r *http.Request) {
	name, id, ok := s.galleryFaceParam(w, r)
	if !ok {
		return
	}
	payload, _ := json.Marshal(projections.GalleryChange{Op: "remove", PersonName: name, FaceID: id})
	s.appendAction(w, r.Context(), ingest.Action{
		Type: vocab.GalleryChangeCode, TsMs: s.now().UnixMilli(), Source: vocab.OperatorSource, Payload: payload,
	}, http.StatusOK)
}

// readJPEG reads an image/jpeg body of at most vocab.MaxSnapshotBytes
// (413 beyond, checked while reading) that decodes as a JPEG (422
// otherwise).
func (s *Server) readJPEG(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	tooBig := func() ([]byte, bool) {
		httpx.WriteDetail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Image too large: the limit is %d bytes", vocab.MaxSnapshotBytes))
		return nil, false
	}
	if r.ContentLength > vocab.MaxSnapshotBytes {
		return tooBig()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, vocab.MaxSnapshotBytes+1))
	switch {
	case err != nil:
		httpx.WriteDetail(w, http.StatusBadRequest, "Could not read the request body")
		return nil, false
	case len(body) > vocab.MaxSnapshotBytes:
		return tooBig()
	}
	if _, err := s.decodeJPEG(body); err != nil {
		httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"body"}, Type: "value_error", Msg: "Value error, " + err.Error()}})
		return nil, false
	}
	return body, true
}

// decodeJPEG decodes b, refusing what is not a JPEG and images over
// maxGalleryPixels before their pixels are allocated.
func (s *Server) decodeJPEG(b []byte) (image.Image, error) {
	if len(b) == 0 {
		return nil, errors.New("the image is empty")
	}
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return nil, errors.New("not a JPEG image")
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("not a valid JPEG image: %v", err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || int64(cfg.Width)*int64(cfg.Height) > maxGalleryPixels {
		return nil, fmt.Errorf("the image is %d×%d pixels; at most %d pixels are accepted", cfg.Width, cfg.Height, maxGalleryPixels)
	}
	s.imageSem <- struct{}{}
	defer func() { <-s.imageSem }()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("not a valid JPEG image: %v", err)
	}
	return img, nil
}

// cropFromEvent returns face_match id's snapshot cropped to its bbox, as
// a JPEG: 404 when there is no such event, 422 when it is not a
// face_match, has no snapshot or its bbox is not in the snapshot.
func (s *Server) cropFromEvent(w http.ResponseWriter, id uint64) ([]byte, bool) {
	unprocessable := func(msg string) ([]byte, bool) {
		httpx.WriteValidation(w, []vocab.FieldError{{Loc: []any{"body", "from_event"}, Type: "value_error", Msg: "Value error, " + msg}})
		return nil, false
	}
	unavailable := func(what string, err error) ([]byte, bool) {
		s.logger.Error(what, "id", id, "err", err)
		httpx.WriteDetail(w, http.StatusServiceUnavailable, "Event store unavailable")
		return nil, false
	}
	typ, js, err := s.opts.View.Event(id)
	switch {
	case errors.Is(err, eventlog.ErrNotFound):
		httpx.WriteDetail(w, http.StatusNotFound, "Event not found")
		return nil, false
	case err != nil:
		return unavailable("read event failed", err)
	case typ != vocab.FaceMatchCode:
		return unprocessable(fmt.Sprintf("event %d is a %s, not a face_match", id, vocab.TypeName(typ)))
	}
	snap, err := s.opts.Log.Snapshot(id)
	switch {
	case errors.Is(err, eventlog.ErrNotFound):
		return unprocessable(fmt.Sprintf("event %d has no snapshot", id))
	case err != nil:
		return unavailable("read snapshot failed", err)
	}
	var ev struct {
		Payload struct {
			BBox     *[4]float64 `json:"bbox"`
			Snapshot *[4]float64 `json:"snapshot_bbox"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(js, &ev); err != nil || ev.Payload.BBox == nil {
		// A producer's extra snapshot_bbox of another shape lands here too.
		return unprocessable(fmt.Sprintf("event %d has no usable bbox", id))
	}
	img, err := s.decodeJPEG(snap)
	if err != nil {
		return unprocessable(fmt.Sprintf("the snapshot of event %d: %v", id, err))
	}
	box, err := CropRect(*ev.Payload.BBox, ev.Payload.Snapshot, img.Bounds())
	if err != nil {
		return unprocessable(fmt.Sprintf("event %d: %v", id, err))
	}
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok { // every image jpeg.Decode returns has SubImage
		return unprocessable("the snapshot cannot be cropped")
	}
	var out bytes.Buffer
	if err := jpeg.Encode(&out, sub.SubImage(box), &jpeg.Options{Quality: galleryCropQuality}); err != nil {
		return unprocessable("the crop cannot be encoded: " + err.Error())
	}
	if out.Len() > vocab.MaxSnapshotBytes {
		return unprocessable("the crop is larger than the image limit")
	}
	return out.Bytes(), true
}

// CropRect maps a face_match's bbox (frame pixels) into its snapshot,
// whose pixels are bounds. The vision pipeline's snapshot shows the
// frame region snapshotBBox (the box padded, then scaled): the bbox is
// mapped through it. Without snapshotBBox the snapshot is taken to be the
// frame itself, as a producer that sends whole frames has it. The bbox
// must lie within the snapshot, give or take the rounding of one pixel,
// or the snapshot does not show it and an error says so.
func CropRect(bbox [4]float64, snapshotBBox *[4]float64, bounds image.Rectangle) (image.Rectangle, error) {
	x1, y1, x2, y2 := bbox[0], bbox[1], bbox[2], bbox[3]
	if sb := snapshotBBox; sb != nil {
		sw, sh := sb[2]-sb[0], sb[3]-sb[1]
		if !(sw > 0 && sh > 0) || !finite(sb[:]...) {
			return image.Rectangle{}, errors.New("snapshot_bbox is not a box")
		}
		kx, ky := float64(bounds.Dx())/sw, float64(bounds.Dy())/sh
		x1, x2 = (x1-sb[0])*kx+float64(bounds.Min.X), (x2-sb[0])*kx+float64(bounds.Min.X)
		y1, y2 = (y1-sb[1])*ky+float64(bounds.Min.Y), (y2-sb[1])*ky+float64(bounds.Min.Y)
	}
	if !finite(x1, y1, x2, y2) {
		return image.Rectangle{}, errors.New("the bbox is not a box")
	}
	// Rounded, then clamped to ±2^30 so the conversion to int is defined.
	pix := func(f float64) int { return int(math.Max(-1<<30, math.Min(1<<30, math.Round(f)))) }
	r := image.Rect(pix(x1), pix(y1), pix(x2), pix(y2))
	const slack = 1
	if r.Empty() {
		return image.Rectangle{}, errors.New("the bbox is empty")
	}
	if !r.In(bounds.Inset(-slack)) {
		return image.Rectangle{}, fmt.Errorf("the bbox %v lies outside the %d×%d snapshot", bbox, bounds.Dx(), bounds.Dy())
	}
	if r = r.Intersect(bounds); r.Empty() {
		return image.Rectangle{}, errors.New("the bbox is empty")
	}
	return r, nil
}

func finite(fs ...float64) bool {
	for _, f := range fs {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
	}
	return true
}

// jpegBodyType reports whether ct is image/jpeg (parameters allowed, the
// media type compared without regard to case).
func jpegBodyType(ct string) bool {
	if ct == "image/jpeg" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return (err == nil || errors.Is(err, mime.ErrInvalidMediaParameter)) && mt == "image/jpeg"
}

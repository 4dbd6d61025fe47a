// Package vision turns camera frames into face_match and plate_read events
// (CONTRACT §7). Everything that touches OpenCV or Tesseract is built only
// with the gocv build tag; without it the package still compiles, Available
// reports false, New refuses configured sources with ErrNoOpenCV and Detect
// returns it.
//
// # Pipeline
//
// One goroutine per Source. Files (video or still image) are read to the end
// as fast as the CPU allows and sampled at Options.FPS by media time; streams
// (rtsp://, http://, …) and devices (0, /dev/video0) are read by a reader
// goroutine into a one-frame mailbox that always holds the newest frame, and
// the analyser takes it every 1/FPS: a slow analyser skips frames instead of
// falling behind the camera (skipped sample ticks count as
// frames_dropped_total{reason="overrun"}). A stream that fails to open or
// stops delivering frames is reopened with exponential back-off (1 s doubling
// to 30 s, reset after a connection that delivered frames).
//
// Per analysed frame:
//
//	decode → grey ─┬─ face_detect: Haar cascade on the frame scaled to ≤ 640 px wide
//	               │   recognise: LBPH descriptor of each face, nearest gallery entry
//	               └─ plate_detect: rows of character-shaped blobs (adaptive threshold,
//	                  connected components, chaining) + optional plate Haar cascade
//	                   ocr: deskew, locate characters (Otsu), Tesseract on the grey line
//	                        (single line, A–Z0–9), normalise
//	→ de-duplication → sink.Append
//
// Each stage's time is in securevision_vision_stage_seconds{stage}.
//
// # Recognition and the similarity formula
//
// The gallery is GalleryDir/<person name>/*.jpg (also .jpeg, .png), enrolled
// by New and by Pipeline.Reload (SIGHUP); the largest detected face of each
// image is enrolled, a small image (≤ 300 px) without a detectable face is
// taken as a ready-made crop, other images are skipped and counted in
// securevision_vision_errors_total{source="gallery",reason="gallery"}.
//
// A face crop is resized to 64×64, histogram-equalised and blurred (3×3
// Gaussian); its descriptor is the concatenation of uniform-LBP histograms
// (8 neighbours, radius 1, 59 bins) over a 4×4 grid, each cell normalised so
// the whole descriptor sums to 1. The distance between two descriptors is the
// symmetric chi-square distance
//
//	d(a, b) = Σ (aᵢ − bᵢ)² / (aᵢ + bᵢ)      0 ≤ d ≤ 2
//
// embedding_distance is d to the nearest gallery descriptor (all images of
// all people; 1-nearest-neighbour), and
//
//	similarity = 1 − d/2                     0 ≤ similarity ≤ 1
//
// A face whose similarity is below Options.Threshold (default 0.65) is
// person_name "unknown" (its similarity and distance still tell how close the
// nearest person was); with an empty gallery every face is "unknown" with
// similarity 0 and no embedding_distance. LBPH needs no downloaded model but
// is far weaker than a neural embedding: it separates a handful of enrolled
// people under similar lighting, not thousands.
//
// # Plates
//
// Plate text is upper-cased and stripped to A–Z0–9; an O or I touching a
// digit is read as 0 or 1 (Tesseract's English model prefers the letters).
// confidence is Tesseract's mean character confidence / 100. region comes
// from Options.Regions (by source ID, "*" for all); list_match from
// Options.Lists, and then ListMatchSet is true so the ingest path does not
// look the plate up again. Readings shorter than 4 or longer than 10
// characters, or below confidence 0.5, are dropped as noise.
//
// # De-duplication
//
// Sightings are keyed by (source, person_name) for faces — all unknown faces
// of a source share one key — and by (source, watchlist.Key(plate_text)) for
// plates, so OCR variants such as A8C123/ABC123 collapse. The first sighting
// of a key opens a window of Options.Cooldown (default 10 s) in frame time;
// every sighting in the window competes, and the best one (highest similarity
// or OCR confidence; the earliest on ties) becomes the one event of the
// window, with its own ts_ms, bbox and snapshot. The event is emitted when
// the window closes — at the first analysed frame (or, for live sources,
// sample tick) at or after start + Cooldown — or when the source ends (end of
// file, shutdown). So a person in view for a minute yields one event per
// cooldown, each up to Cooldown late. A negative Cooldown disables
// de-duplication.
//
// # Time
//
// Live sources: ts_ms is the wall clock when the frame was read. Files:
// ts_ms = the wall clock when processing started (DetectOptions.Start for
// Detect) + the frame's position in the file, so the events of a file keep
// the video's spacing and order and fall inside retention.
//
// # Snapshots
//
// Every event carries a JPEG (quality 85) of its detection box padded by 20 %
// on each side, scaled to at most 640 px on the long side.
//
// # Bad input
//
// A missing, corrupt or undecodable file, a missing or malformed cascade (checked
// as XML in Go first, because OpenCV aborts the process on a malformed one), a
// missing Tesseract language pack and an unreadable gallery directory give an
// error from New or Detect; unreadable gallery images, failed reads of a live
// source and sink failures are counted in securevision_vision_errors_total and
// logged, and the pipeline goes on.
package vision

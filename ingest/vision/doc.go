// Package vision turns camera frames into face_match and plate_read events
// and hands them to an ingest.Sink: the append path (serve, detect), or
// detect --server's HTTP client. It uses OpenCV 4 through gocv, Tesseract
// through gosseract, ingest/watchlist for list_match and internal/vocab for
// the field limits. Everything that touches OpenCV or Tesseract is built only
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
//	decode → grey → motion gate (160-px thumbnail vs the last analysed frame;
//	               │ a static scene is skipped, see Performance)
//	               ├─ face_detect: Haar cascade on the frame scaled to ≤ 480 px wide,
//	               │   around the moving regions only when nothing was in view
//	               │   recognise: LBPH descriptor of each face, nearest gallery entry
//	               └─ plate_detect: rows of character-shaped blobs (adaptive threshold,
//	                  connected components, chaining) + plate Haar cascade (off by
//	                  default, Options.PlateCascade);
//	                  per candidate: plate outline → perspective rectification,
//	                  characters cut out onto a clean white line (see Plates)
//	                   ocr: Tesseract passes on the line (A–Z0–9 less I/O), vote
//	→ de-duplication → sink.Append
//
// Each stage's time is in securevision_vision_stage_seconds{stage}.
//
// # Performance
//
// Goal: two sources at 5 fps in real time on two cores, i.e. ≥ 10 analysed
// frames/s in total at 768×576 and 1280×720 (BENCHMARKS.md section g checks
// it). What it takes:
//
//   - Face detection (Haar, frontalface_default) runs on the frame scaled
//     to ≤ 480 px wide (was 640) with a 24-px minimum face (38 px in a
//     768-px frame, 64 px at 1280), scale factor 1.1, 4 neighbours. Scale
//     factors 1.15–1.2 were tried and rejected: they lose the large face
//     of messi5.jpg, 3–5 of 26 Megamind frames and gallery images.
//   - Motion gate (motionGate): each frame's grey 160-px thumbnail is
//     compared with the last analysed frame's (|Δ| ≥ 16 grey levels on ≥
//     0.2 % of it counts as motion). A static frame is skipped
//     (frames_dropped_total{reason="static"}) unless staticRecheckMs (2 s)
//     have passed, or 1 s when the last analysed frame held a face or
//     plate, so a person standing still or a parked car is still sighted
//     and de-duplication still emits one event per cooldown. The first
//     frame of a source (a still image) is always analysed. When a frame
//     moved and the last analysed frame held no face, faces are searched
//     only in the moving regions padded by two minimum face sizes (the
//     whole frame when these cover > 60 % of it, or after a sighting);
//     the scaled frame is equalised as a whole first, so a face in a
//     region is found as in the whole frame.
//   - The plate Haar cascade is off by default: it cost as much per frame
//     as all the other stages together, and TestPlateReading reads the
//     same plates without it. The morphological candidate search is cheap
//     by comparison, and OCR only runs on candidates.
//   - OpenCV (TBB) threads are set per process by New to NumCPU / number
//     of sources (at least 1): with two sources on two cores each OpenCV
//     call runs on its source's thread (threads_gocv.cpp wraps
//     cv::setNumThreads, which gocv v0.31 lacks). 1 vs 2 threads was
//     within noise for two concurrent sources.
//   - Mats are reused across frames (grey, detection scratch, thumbnails);
//     the plate search no longer copies an unscaled frame.
//
// Each change was measured against the code before it, old and new in
// alternating runs of
//
//	go test -tags gocv -run '^$' -bench . -benchtime 20x ./ingest/vision/
//
// compared by cpu_ms/frame (the CPU time of all threads per frame), which
// other jobs on a shared machine disturb less than wall-clock frames/s.
// BENCHMARKS.md section g has the current figures.
//
// TwoSources* run two analysers concurrently (two cameras) and report
// their total frames/s. vtest.avi has walkers in every frame, so every
// frame passes the gate: the gain there is the smaller detection frame,
// the region search and the plate cascade.
// AnalysePlates changes the whole scene every frame, so faces are searched
// in the whole 800×600 frame and OCR runs; it is not real-time material.
//
// # Recognition and the similarity formula
//
// The gallery is GalleryDir/<person name>/*.jpg (also .jpeg, .png), the
// seed, plus the store's gallery (Options.StoreGallery: the images of POST
// /people/{name}/faces), both enrolled by New and by Pipeline.Reload, which
// serve calls on SIGHUP and, debounced, after every gallery_change commit;
// the new gallery is swapped in atomically, so analysers never wait for
// it. The largest detected face of each image is enrolled, a small image
// (≤ 300 px) without a detectable face is taken as a ready-made crop, other
// images are skipped and counted in
// securevision_vision_errors_total{source="gallery",reason="gallery"}. A
// store image cut from a face_match at its bbox (GalleryImage.Crop) is a
// face box already and is described whole, as recognition describes a
// detected box. Store images are enrolled once: their descriptors are kept
// by face id from one reload to the next.
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
// A candidate is a chain of ≥ 4 character-shaped dark blobs of similar
// height on one line. Around it the plate's outline is searched: both
// polarities of an Otsu binarisation of the neighbourhood, contours
// simplified (approxPolyDP) to convex quadrilaterals that enclose the chain
// and are not cut off by the neighbourhood's edge, smallest first. The
// quadrilateral is warped (getPerspectiveTransform, warpPerspective) to a
// fronto-parallel plate 96 px high, undoing the rotation, shear and keystone
// of an off-axis camera; an outline is rejected when a character then
// touches the left or right edge (it cut through the text), and without an
// outline the padded crop, deskewed by the chain's slope, is used. In the
// plate the characters are the Otsu blobs that cover most of the median
// character band (descenders such as J's allowed); their anti-aliased grey
// pixels, stretched so ink is black and plate white, are pasted onto a white
// canvas with half a character height of margin, leaving out the border,
// screws and dirt that made Tesseract add or drop edge characters.
//
// Tesseract (LSTM, eng) reads the line in up to four passes: characters
// scaled to 32 px in single-line mode, then 32 px raw-line, 44 px and 24 px
// single-line. The first pass alone is taken when its length equals the
// number of character blobs and every character is ≥ 0.9 sure (most clean
// plates); otherwise the readings vote: readings as long as the blob count
// win (Tesseract's typical error doubles or drops a character), and among
// readings of the winning length each position takes the character with the
// highest summed confidence. No plate-format prior (letter/digit positions)
// is used: formats differ by jurisdiction and B/8, S/5, G/6 and Z/2 all
// occur in them. The whitelist leaves out I and O, which are read as 1 and
// 0: many jurisdictions do not issue them, and watchlist.Key folds both
// pairs anyway.
//
// Accuracy on the synthetic set of TestPlateReading (200 random plates in
// US/UK-like formats, DejaVu Sans Bold, 170–320 px wide, perspective,
// blur, noise, pasted into photographs; deterministic): 181/200 exact
// (90.5 %), up from 122/200 (61 %) with the previous deskew + grey-crop +
// single-pass reader. The misses are mostly plates whose characters merge
// into one blob at the smallest sizes (no chain, or a chain missing its
// first characters) and residual 6/G, 5/S, 8/B confusions. Measure with
//
//	go test -tags gocv -run TestPlateReading -v ./ingest/vision/
//
// Cost: the outline search and warp are a few small-image operations per
// candidate; OCR costs one Tesseract call for a sure plate and four for a
// doubtful one (BenchmarkAnalysePlates).
//
// Plate text is upper-cased and stripped to A–Z0–9.
// confidence is the voted mean character confidence (Tesseract's / 100). region comes
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
// on each side, scaled to at most 640 px on the long side. A face_match's
// payload records the frame region the snapshot shows as snapshot_bbox
// ([x1, y1, x2, y2] in frame pixels), so the bbox can be cut out of the
// snapshot again (POST /people/{name}/faces {"from_event"}).
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

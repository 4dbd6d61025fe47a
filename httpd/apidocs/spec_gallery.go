package apidocs

import (
	"fmt"

	"github.com/securevision/events/internal/vocab"
)

// The face gallery: GET, POST /people/{name}/faces and DELETE
// /people/{name}/faces/{face_id}.

func init() {
	moreSchemas = append(moreSchemas, gallerySchemas)
	moreEndpoints = append(moreEndpoints, galleryEndpoints)
}

func gallerySchemas() ordered[*schema] {
	face := object("GalleryFace", "One image of a person's face gallery.", []string{"face_id", "created_at", "from_event", "image_url"},
		prop("face_id", int64s("The id of the gallery_change event that added it.")),
		prop("created_at", str("When it was added.")),
		prop("from_event", &schema{Type: []any{"integer", "null"}, Format: "int64",
			Description: "The face_match it was cropped from; null for an uploaded image."}),
		prop("image_url", str("The image: GET /events/{face_id}/snapshot.jpg.")))
	in := object("GalleryFromEvent", "Enrol a face_match's snapshot, cropped to its bbox. Unknown members are refused.",
		[]string{"from_event"}, prop("from_event", int64s("A face_match event with a snapshot.")))
	return ordered[*schema]{{"GalleryFace", face}, {"GalleryFromEvent", in}}
}

func galleryEndpoints() []endpoint {
	name := &parameter{Name: "name", In: "path", Required: true, Description: "The person's name, exactly as events carry it.",
		Schema: &schema{Type: "string", MinLength: 1, MaxLength: vocab.MaxPersonNameLen}}
	faceID := &parameter{Name: "face_id", In: "path", Required: true, Description: "The face: its add event's id.", Schema: int64s("")}
	change := func(desc string) *response {
		return &response{Description: desc, Content: jsonContent(ref("Event"), nil)}
	}
	badName := invalid([]any{"path", "name"}, "Value error, not a person name", "value_error")
	return []endpoint{
		{method: "GET", path: "/people/{name}/faces", op: &operation{
			Tags: []string{"identities"}, Summary: "A person's face gallery", OperationID: "gallery_faces",
			Description: "The images the recogniser enrols for this person (besides GALLERY_DIR's), oldest first. " +
				"A person known from face matches without gallery images has an empty list.",
			Parameters: []*parameter{name},
			Responses: ordered[*response]{
				okJSON("The faces.", arrayOf(ref("GalleryFace"), ""), nil), unauthorized(),
				errResp("404", "No face match and no gallery image has this name.", "Person not found"),
				badName, tooMany(),
			},
		}},
		{method: "POST", path: "/people/{name}/faces", op: &operation{
			Tags: []string{"identities"}, Summary: "Add a face to a person's gallery", OperationID: "gallery_add",
			Description: "Appends a `gallery_change` event (`op: add`) that carries the image, so the image is stored, backed up and " +
				"replicated with the log; the recogniser enrols it within seconds, without a restart. The body is either the face " +
				fmt.Sprintf("as an `image/jpeg` (at most %d bytes, at most %d pixels) or JSON `{\"from_event\": id}`, ", vocab.MaxSnapshotBytes, 16<<20) +
				"which enrols that face_match's snapshot cropped to its bbox (mapped through the payload's `snapshot_bbox` when the " +
				"producer gives one). The person need not exist yet; `unknown` cannot have a gallery.",
			Parameters: []*parameter{name},
			RequestBody: &requestBody{Required: true, Content: ordered[*mediaType]{
				{"application/json", &mediaType{Schema: ref("GalleryFromEvent"), Example: map[string]any{"from_event": 42}}},
				{"image/jpeg", &mediaType{Schema: &schema{Type: "string", Format: "binary"}}},
			}},
			Responses: ordered[*response]{
				{"201", change("The gallery_change event; the image is at /events/{id}/snapshot.jpg.")},
				unauthorized(),
				errResp("404", "from_event names no event.", "Event not found"),
				errResp("413", "The image is larger than the limit.", fmt.Sprintf("Image too large: the limit is %d bytes", vocab.MaxSnapshotBytes)),
				errResp("415", "The body is neither application/json nor image/jpeg.", "Unsupported Media Type: send the body as application/json or image/jpeg"),
				invalid([]any{"body", "from_event"}, "Value error, event 7 is a plate_read, not a face_match", "value_error"),
				tooMany(), unavailable("Event store unavailable"),
			},
		}},
		{method: "GET", path: "/people/{name}/faces/{face_id}", op: &operation{
			Tags: []string{"identities"}, Summary: "A gallery image", OperationID: "gallery_image",
			Description: "The face's JPEG, as GET /events/{face_id}/snapshot.jpg serves it, while the face is in this person's gallery.",
			Parameters:  []*parameter{name, faceID},
			Responses: ordered[*response]{
				{"200", &response{Description: "The JPEG.", Content: ordered[*mediaType]{
					{"image/jpeg", &mediaType{Schema: &schema{Type: "string", Format: "binary"}}}}}},
				unauthorized(),
				errResp("404", "The face is not in this person's gallery.", "Face not in this person's gallery"),
				badName, tooMany(),
			},
		}},
		{method: "DELETE", path: "/people/{name}/faces/{face_id}", op: &operation{
			Tags: []string{"identities"}, Summary: "Remove a face from a person's gallery", OperationID: "gallery_delete",
			Description: "Appends a `gallery_change` event (`op: remove`); the recogniser drops the image within seconds. The add " +
				"event and its image stay in the log (the audit trail) until DELETE /people/{name} erases them.",
			Parameters: []*parameter{name, faceID},
			Responses: ordered[*response]{
				{"200", change("The gallery_change event.")}, unauthorized(),
				errResp("404", "The face is not in this person's gallery.", "Face not in this person's gallery"),
				badName, tooMany(), unavailable("Event store unavailable"),
			},
		}},
	}
}

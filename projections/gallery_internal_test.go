package projections

import (
	"fmt"
	"testing"
)

// TestGalleryState: adds append in id order, removes take one face (and
// the person with the last), unknown removes change nothing, erasure's
// forgetGallery drops a person.
func TestGalleryState(t *testing.T) {
	v := New(Options{})
	apply := func(id uint64, payload string) {
		t.Helper()
		js := fmt.Sprintf(`{"id":%d,"type":"gallery_change","created_at":"t%d","payload":%s}`, id, id, payload)
		if err := v.gallery.apply([]byte(js)); err != nil {
			t.Fatal(err)
		}
	}
	apply(3, `{"op":"add","person_name":"Ann","from_event":1}`)
	apply(4, `{"op":"add","person_name":"Ann"}`)
	apply(5, `{"op":"add","person_name":"Bob"}`)
	apply(6, `{"op":"remove","person_name":"Ann","face_id":3}`)
	apply(7, `{"op":"remove","person_name":"Ann","face_id":3}`)
	apply(8, `{"op":"remove","person_name":"Bob","face_id":4}`)
	if fs := v.GalleryFaces("Ann"); len(fs) != 1 || fs[0].FaceID != 4 || fs[0].CreatedAt != "t4" || fs[0].FromEvent != nil {
		t.Fatalf("Ann: %+v", fs)
	}
	if got := fmt.Sprint(v.GalleryPeople()); got != "[Ann Bob]" {
		t.Fatalf("people %s", got)
	}
	apply(9, `{"op":"remove","person_name":"Bob","face_id":5}`)
	if got := fmt.Sprint(v.GalleryPeople()); got != "[Ann]" {
		t.Fatalf("people after Bob's last face %s", got)
	}
	v.forgetGallery("Ann")
	if fs := v.GalleryFaces("Ann"); fs != nil || len(v.GalleryPeople()) != 0 {
		t.Fatalf("after forgetGallery: %+v", fs)
	}
	if err := v.gallery.apply([]byte(`{"id":1,"payload":{"op":"rename"}}`)); err == nil {
		t.Fatal("unknown op applied")
	}
}

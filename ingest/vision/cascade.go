package vision

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
)

// checkCascadeFile reports whether path is a well-formed XML file whose
// root element is <opencv_storage>, the format of OpenCV cascades. OpenCV
// itself throws an uncaught C++ exception (and so aborts the process) on a
// malformed file, so the check runs in Go before the file reaches OpenCV.
func checkCascadeFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w (Debian ships cascades in opencv-data)", err)
	}
	defer f.Close()
	d := xml.NewDecoder(f)
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("not a cascade XML file: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
			if root != "opencv_storage" {
				return fmt.Errorf("not a cascade XML file: root element <%s>, want <opencv_storage>", root)
			}
		}
	}
	if root == "" {
		return errors.New("not a cascade XML file: no root element")
	}
	return nil
}

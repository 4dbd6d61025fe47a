package mqtt

import (
	"encoding/json"
	"math"

	"github.com/securevision/events/internal/vocab"
)

// Payloads of the availability and alert topics (Home Assistant's
// defaults for availability, spelled out in the configs all the same).
const (
	payloadOnline  = "online"
	payloadOffline = "offline"
	payloadOn      = "ON"
	payloadOff     = "OFF"
)

// Discovery identity: the device's manufacturer and model, and the
// origin Home Assistant shows for the configs.
const (
	manufacturer = "SecureVision"
	model        = "SecureVision Events camera"
	originName   = "SecureVision Events"
)

// discoveryConfig is one Home Assistant MQTT discovery message (the
// single-component form): the fields of an MQTT sensor or binary_sensor
// that this service sets.
type discoveryConfig struct {
	Name                string  `json:"name"`
	UniqueID            string  `json:"unique_id"`
	StateTopic          string  `json:"state_topic"`
	ValueTemplate       string  `json:"value_template,omitempty"`
	JSONAttributesTopic string  `json:"json_attributes_topic,omitempty"`
	PayloadOn           string  `json:"payload_on,omitempty"`
	PayloadOff          string  `json:"payload_off,omitempty"`
	OffDelay            int64   `json:"off_delay,omitempty"`
	DeviceClass         string  `json:"device_class,omitempty"`
	Icon                string  `json:"icon,omitempty"`
	AvailabilityTopic   string  `json:"availability_topic"`
	PayloadAvailable    string  `json:"payload_available"`
	PayloadNotAvailable string  `json:"payload_not_available"`
	Device              hDevice `json:"device"`
	Origin              hOrigin `json:"origin"`
}

type hDevice struct {
	Identifiers  []string `json:"identifiers"`
	Name         string   `json:"name"`
	Manufacturer string   `json:"manufacturer"`
	Model        string   `json:"model"`
	SWVersion    string   `json:"sw_version"`
}

type hOrigin struct {
	Name      string `json:"name"`
	SWVersion string `json:"sw_version"`
}

// discoveryMsg is one retained config message.
type discoveryMsg struct {
	topic   string
	payload []byte
}

// Objects (the last topic level before /config, and the end of each
// unique_id) of a camera's entities.
const (
	objLastPerson     = "last_person"
	objLastPlate      = "last_plate"
	objWatchlistAlert = "watchlist_alert"
)

// discoveryMessages builds the three config messages of one camera: the
// "last person" and "last plate" sensors, whose state is the name or
// plate text of the camera's latest event of that type and whose
// attributes are that whole event, and the "watchlist alert" binary
// sensor. Home Assistant caps a state at 255 characters; a person_name
// may have 256.
func (p *Publisher) discoveryMessages(c *camera) []discoveryMsg {
	node := "securevision_" + c.esc
	dev := hDevice{
		Identifiers:  []string{node},
		Name:         "SecureVision " + c.id,
		Manufacturer: manufacturer,
		Model:        model,
		SWVersion:    vocab.Version,
	}
	base := func(name, object, state string) discoveryConfig {
		return discoveryConfig{
			Name: name, UniqueID: node + "_" + object, StateTopic: state,
			AvailabilityTopic: p.topicAvailable, PayloadAvailable: payloadOnline, PayloadNotAvailable: payloadOffline,
			Device: dev, Origin: hOrigin{Name: originName, SWVersion: vocab.Version},
		}
	}
	person := base("Last person", objLastPerson, c.state[vocab.FaceMatchCode])
	person.ValueTemplate = "{{ value_json.payload.person_name[:255] }}"
	person.JSONAttributesTopic = person.StateTopic
	person.Icon = "mdi:account"
	plate := base("Last plate", objLastPlate, c.state[vocab.PlateReadCode])
	plate.ValueTemplate = "{{ value_json.payload.plate_text }}"
	plate.JSONAttributesTopic = plate.StateTopic
	plate.Icon = "mdi:car"
	alert := base("Watchlist alert", objWatchlistAlert, c.alert)
	alert.PayloadOn, alert.PayloadOff = payloadOn, payloadOff
	alert.DeviceClass = "problem"
	// Home Assistant turns the sensor off by itself too, so that it does
	// not stay on while this service cannot reach the broker.
	alert.OffDelay = int64(math.Ceil(p.opts.AlertOffDelay.Seconds()))

	msgs := make([]discoveryMsg, 0, 3)
	for _, x := range []struct {
		component, object string
		cfg               discoveryConfig
	}{
		{"sensor", objLastPerson, person},
		{"sensor", objLastPlate, plate},
		{"binary_sensor", objWatchlistAlert, alert},
	} {
		// Strings, a string slice and an int: Marshal cannot fail (it
		// writes invalid UTF-8 in a camera id as U+FFFD).
		b, _ := json.Marshal(x.cfg)
		msgs = append(msgs, discoveryMsg{
			topic:   p.opts.DiscoveryPrefix + "/" + x.component + "/" + node + "/" + x.object + "/config",
			payload: b,
		})
	}
	return msgs
}

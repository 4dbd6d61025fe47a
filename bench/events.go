package bench

import (
	"fmt"
	"math/rand/v2"

	"github.com/securevision/events/ingest"
	"github.com/securevision/events/internal/ingestbody"
	"github.com/securevision/events/internal/vocab"
)

// cameraNames are the first sources; more are numbered.
var cameraNames = [...]string{
	"camera_front_door", "camera_driveway", "camera_lobby", "camera_garage_entry",
	"camera_garage_exit", "camera_loading_dock", "camera_parking_north", "camera_parking_south",
	"camera_gate_main", "camera_gate_service", "camera_elevator_1", "camera_elevator_2",
	"camera_stairwell_a", "camera_stairwell_b", "camera_reception", "camera_corridor_2f",
	"camera_corridor_3f", "camera_roof_access", "camera_side_entrance", "camera_back_alley",
}

var personNames = [...]string{
	"John Doe", "Jane Roe", "Alice Martin", "Bob Okafor", "Carla Mendes", "Deepak Rao",
	"Eva Novak", "Farid Haddad", "Grace Kim", "Hiro Tanaka", "Ines Duarte", "Jonas Berg",
	"Kofi Mensah", "Lena Fischer", "Mateo Ruiz", "Nadia Petrova", "Omar Aziz", "Priya Nair",
	"Quentin Blake", "Rosa Alvarez", "Sven Larsen", "Tara Singh", "Uma Thakur", "Victor Hugo",
}

var regions = [...]string{"US-CA", "US-NV", "US-OR", "US-AZ", "US-WA"}

// Sources returns n camera source ids: the twenty named cameras first, then
// camera_021, camera_022, ...
func Sources(n int) []string {
	s := make([]string, 0, n)
	for i := 0; i < n; i++ {
		if i < len(cameraNames) {
			s = append(s, cameraNames[i])
		} else {
			s = append(s, fmt.Sprintf("camera_%03d", i+1))
		}
	}
	return s
}

// Generator makes realistic detection events: about half face matches
// (a third of them "unknown"), half plate reads (a few on a watchlist), from
// a fixed set of sources. It is deterministic for a seed and not safe for
// concurrent use.
type Generator struct {
	rng     *rand.Rand
	sources []string
}

// NewGenerator returns a generator over sources (Sources(20) if empty).
func NewGenerator(seed uint64, sources []string) *Generator {
	if len(sources) == 0 {
		sources = Sources(20)
	}
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), sources: sources}
}

// Sources returns the generator's sources.
func (g *Generator) Sources() []string { return g.sources }

// Event returns one event stamped ts (ms).
func (g *Generator) Event(ts int64) ingest.Event {
	r := g.rng
	src := g.sources[r.IntN(len(g.sources))]
	x, y := float64(r.IntN(1600)), float64(r.IntN(880))
	w := float64(40 + r.IntN(200))
	if r.IntN(2) == 0 {
		name := "unknown"
		sim := 0.35 + 0.3*r.Float64()
		if r.IntN(3) != 0 {
			name = personNames[r.IntN(len(personNames))]
			sim = 0.7 + 0.29*r.Float64()
		}
		f := &ingest.Face{PersonName: name, Similarity: round3(sim), BBox: ingest.BBox{x, y, x + w, y + w*1.2}}
		if r.IntN(10) < 7 {
			d := round3(1 - sim)
			f.EmbeddingDistance = &d
		}
		return ingest.Event{Type: vocab.FaceMatch, TsMs: ts, Source: src, Face: f}
	}
	p := &ingest.Plate{PlateText: g.plate(), Confidence: round3(0.6 + 0.39*r.Float64()),
		Region: regions[r.IntN(len(regions))], ListMatchSet: true}
	switch k := r.IntN(100); {
	case k < 3:
		p.ListMatch = vocab.Blacklist
	case k < 15:
		p.ListMatch = vocab.Whitelist
	}
	if r.IntN(2) == 0 {
		p.BBox = &ingest.BBox{x, y, x + w, y + w/3}
	}
	return ingest.Event{Type: vocab.PlateRead, TsMs: ts, Source: src, Plate: p}
}

// plate makes a Californian-style plate: digit, three letters, three
// digits (7ABC123), or three letters and four digits (ABC1234).
func (g *Generator) plate() string {
	r := g.rng
	var b [7]byte
	letter := func() byte { return byte('A' + r.IntN(26)) }
	digit := func() byte { return byte('0' + r.IntN(10)) }
	if r.IntN(2) == 0 {
		b = [7]byte{digit(), letter(), letter(), letter(), digit(), digit(), digit()}
	} else {
		b = [7]byte{letter(), letter(), letter(), digit(), digit(), digit(), digit()}
	}
	return string(b[:])
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// Body returns a POST /ingest body of n events stamped from ts on, one ms
// apart (written by internal/ingestbody): a JSON array, or one object
// when n is 1.
func (g *Generator) Body(n int, ts int64) []byte {
	b := make([]byte, 0, n*230)
	if n == 1 {
		ev := g.Event(ts)
		return ingestbody.Append(b, &ev)
	}
	b = append(b, '[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		ev := g.Event(ts + int64(i))
		b = ingestbody.Append(b, &ev)
	}
	return append(b, ']')
}

package apidocs

import (
	"bytes"
	"encoding/json"
)

// The subset of the OpenAPI 3.1 object model this package needs. Fields use
// omitempty/omitzero so that the marshalled document carries only what was
// set; maps whose order matters to a reader (paths, properties) are ordered.

type document struct {
	OpenAPI    string                `json:"openapi"`
	Info       info                  `json:"info"`
	Servers    []server              `json:"servers,omitempty"`
	Security   []map[string][]string `json:"security,omitempty"`
	Tags       []tag                 `json:"tags,omitempty"`
	Paths      ordered[pathItem]     `json:"paths"`
	Components components            `json:"components"`
}

type server struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
}

type info struct {
	Title       string   `json:"title"`
	Version     string   `json:"version"`
	Description string   `json:"description,omitempty"`
	License     *license `json:"license,omitempty"`
}

type license struct {
	Name       string `json:"name"`
	Identifier string `json:"identifier,omitempty"`
}

type tag struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// pathItem maps a lower-case HTTP method to its operation.
type pathItem = ordered[*operation]

type operation struct {
	Tags        []string              `json:"tags,omitempty"`
	Summary     string                `json:"summary,omitempty"`
	Description string                `json:"description,omitempty"`
	OperationID string                `json:"operationId"`
	Parameters  []*parameter          `json:"parameters,omitempty"`
	RequestBody *requestBody          `json:"requestBody,omitempty"`
	Responses   ordered[*response]    `json:"responses"`
	Security    []map[string][]string `json:"security,omitzero"`
}

type parameter struct {
	Name        string  `json:"name"`
	In          string  `json:"in"`
	Description string  `json:"description,omitempty"`
	Required    bool    `json:"required,omitempty"`
	Schema      *schema `json:"schema"`
	Example     any     `json:"example,omitzero"`
}

type requestBody struct {
	Description string              `json:"description,omitempty"`
	Required    bool                `json:"required,omitempty"`
	Content     ordered[*mediaType] `json:"content"`
}

type response struct {
	Description string              `json:"description"`
	Headers     ordered[*header]    `json:"headers,omitempty"`
	Content     ordered[*mediaType] `json:"content,omitempty"`
}

type header struct {
	Description string  `json:"description,omitempty"`
	Schema      *schema `json:"schema"`
}

type mediaType struct {
	Schema   *schema           `json:"schema,omitempty"`
	Example  any               `json:"example,omitzero"`
	Examples ordered[*example] `json:"examples,omitempty"`
}

type example struct {
	Summary string `json:"summary,omitempty"`
	Value   any    `json:"value"`
}

type components struct {
	Schemas         ordered[*schema]         `json:"schemas"`
	SecuritySchemes ordered[*securityScheme] `json:"securitySchemes"`
}

type securityScheme struct {
	Type         string `json:"type"`
	Scheme       string `json:"scheme,omitempty"`
	Description  string `json:"description,omitempty"`
	BearerFormat string `json:"bearerFormat,omitempty"`
}

// schema is a JSON Schema 2020-12 object as OpenAPI 3.1 uses it. Type is a
// string or, for nullable values, a []string.
type schema struct {
	Ref                  string           `json:"$ref,omitempty"`
	Title                string           `json:"title,omitempty"`
	Description          string           `json:"description,omitempty"`
	Type                 any              `json:"type,omitzero"`
	Format               string           `json:"format,omitempty"`
	Const                any              `json:"const,omitzero"`
	Enum                 []any            `json:"enum,omitempty"`
	Default              any              `json:"default,omitzero"`
	Minimum              any              `json:"minimum,omitzero"`
	Maximum              any              `json:"maximum,omitzero"`
	MinLength            any              `json:"minLength,omitzero"`
	MaxLength            any              `json:"maxLength,omitzero"`
	Pattern              string           `json:"pattern,omitempty"`
	ContentEncoding      string           `json:"contentEncoding,omitempty"`
	ContentMediaType     string           `json:"contentMediaType,omitempty"`
	Items                *schema          `json:"items,omitempty"`
	MinItems             any              `json:"minItems,omitzero"`
	MaxItems             any              `json:"maxItems,omitzero"`
	Properties           ordered[*schema] `json:"properties,omitempty"`
	Required             []string         `json:"required,omitempty"`
	AdditionalProperties any              `json:"additionalProperties,omitzero"`
	OneOf                []*schema        `json:"oneOf,omitempty"`
	AnyOf                []*schema        `json:"anyOf,omitempty"`
	Examples             []any            `json:"examples,omitempty"`
}

// ordered is a JSON object whose keys keep their insertion order, so that
// Swagger UI and ReDoc list paths and properties as written here rather
// than alphabetically.
type ordered[V any] []kv[V]

type kv[V any] struct {
	Key   string
	Value V
}

// MarshalJSON writes the entries as one JSON object, in order.
func (o ordered[V]) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(e.Key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(e.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

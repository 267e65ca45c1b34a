package pipeline

import (
	"encoding/json"
	"errors"
	"slices"
	"time"
)

// Error classes, for the API's status codes; test with errors.Is.
var (
	// ErrInvalid marks a request that cannot work as given: a table whose
	// schema no longer matches its query, a refused full refresh.
	ErrInvalid = errors.New("pipeline: invalid")
	// ErrConflict marks a table that belongs to something else.
	ErrConflict = errors.New("pipeline: conflict")
	// ErrNotFound is returned for an unknown pipeline.
	ErrNotFound = errors.New("pipeline: not found")
)

// Progress is one micro-batch of one dataset, as Spark's
// StreamingQueryProgress (lastProgress) reports it.
type Progress struct {
	Dataset                string                `json:"dataset"`
	BatchID                int64                 `json:"batchId"`
	Timestamp              time.Time             `json:"timestamp"`
	NumInputRows           int64                 `json:"numInputRows"`
	NumOutputRows          int64                 `json:"numOutputRows"`
	InputRowsPerSecond     float64               `json:"inputRowsPerSecond"`
	ProcessedRowsPerSecond float64               `json:"processedRowsPerSecond"`
	DurationMs             map[string]int64      `json:"durationMs"`
	Watermark              *time.Time            `json:"watermark,omitempty"`
	StateRows              int64                 `json:"numRowsTotal"`
	StateBytes             int64                 `json:"memoryUsedBytes"`
	DroppedByWatermark     int64                 `json:"numRowsDroppedByWatermark"`
	DroppedByExpectations  int64                 `json:"numRowsDroppedByExpectations"`
	Expectations           []ExpectationProgress `json:"expectations,omitempty"`
	Sources                []SourceProgress      `json:"sources,omitempty"`
}

// SourceProgress is what a micro-batch read from one source.
type SourceProgress struct {
	Table         string `json:"table"`
	StartSnapshot int64  `json:"startSnapshot"`
	EndSnapshot   int64  `json:"endSnapshot"`
	NumInputRows  int64  `json:"numInputRows"`
}

// ExpectationProgress is an expectation's result over one micro-batch.
type ExpectationProgress struct {
	Name   string `json:"name"`
	Action string `json:"action"` // warn, drop, fail
	Passed int64  `json:"passed_records"`
	Failed int64  `json:"failed_records"`
}

// DatasetStatus is a dataset's state and its totals since the pipeline
// started in this process.
type DatasetStatus struct {
	Name                  string              `json:"name"`
	Kind                  string              `json:"kind"`  // streaming_table, materialized_view
	State                 string              `json:"state"` // idle, running, failed
	Error                 string              `json:"error,omitempty"`
	Batches               int64               `json:"batches"`
	RowsIn                int64               `json:"rows_in"`
	RowsOut               int64               `json:"rows_out"`
	DroppedByExpectations int64               `json:"rows_dropped_by_expectations"`
	DroppedByWatermark    int64               `json:"rows_dropped_by_watermark"`
	Watermark             *time.Time          `json:"watermark,omitempty"`
	StateRows             int64               `json:"state_rows"`
	StateBytes            int64               `json:"state_bytes"`
	Expectations          []ExpectationStatus `json:"expectations,omitempty"`
	LastProgress          *Progress           `json:"last_progress,omitempty"`
}

// ExpectationStatus is an expectation's totals.
type ExpectationStatus struct {
	Name      string `json:"name"`
	Action    string `json:"action"`
	Condition string `json:"condition"`
	Passed    int64  `json:"passed_records"`
	Failed    int64  `json:"failed_records"`
}

// Event is an entry of a pipeline's event log, in the spirit of DLT's:
// Type is create_update, update_progress, flow_progress, full_refresh or
// error; Details holds the progress or error as JSON.
type Event struct {
	Seq       int64           `json:"seq"`
	Timestamp time.Time       `json:"timestamp"`
	Pipeline  string          `json:"pipeline"`
	UpdateID  string          `json:"update_id,omitempty"`
	Type      string          `json:"event_type"`
	Level     string          `json:"level"` // INFO, WARN, ERROR
	Dataset   string          `json:"dataset,omitempty"`
	Message   string          `json:"message"`
	Details   json.RawMessage `json:"details,omitempty"`
}

// Status returns a copy of every table dataset's status, in graph order.
func (r *Runner) Status() []DatasetStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]DatasetStatus, 0, len(r.status))
	for _, d := range r.g.Tables() {
		s := *r.status[d.Key()]
		s.Expectations = slices.Clone(s.Expectations)
		out = append(out, s)
	}
	return out
}

func (r *Runner) setState(d *Dataset, state, errMsg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status[d.Key()]
	s.State, s.Error = state, errMsg
}

func (r *Runner) fail(d *Dataset, err error) {
	r.setState(d, "failed", err.Error())
	details, _ := json.Marshal(map[string]string{"error": err.Error()})
	r.emit(Event{Type: "flow_progress", Level: "ERROR", Dataset: d.Key(), Message: d.Key() + " failed: " + err.Error(), Details: details})
}

func (r *Runner) progress(d *Dataset, p Progress) {
	r.mu.Lock()
	s := r.status[d.Key()]
	s.Batches++
	s.RowsIn += p.NumInputRows
	s.RowsOut += p.NumOutputRows
	s.DroppedByExpectations += p.DroppedByExpectations
	s.DroppedByWatermark += p.DroppedByWatermark
	s.StateRows, s.StateBytes = p.StateRows, p.StateBytes
	if p.Watermark != nil {
		s.Watermark = p.Watermark
	}
	for _, e := range p.Expectations {
		for i := range s.Expectations {
			if s.Expectations[i].Name == e.Name {
				s.Expectations[i].Passed += e.Passed
				s.Expectations[i].Failed += e.Failed
			}
		}
	}
	pc := p
	s.LastProgress = &pc
	r.mu.Unlock()

	details, _ := json.Marshal(p)
	level := "INFO"
	for _, e := range p.Expectations {
		if e.Failed > 0 {
			level = "WARN"
		}
	}
	r.emit(Event{Type: "flow_progress", Level: level, Dataset: d.Key(), Details: details,
		Message: progressMessage(p)})
}

func progressMessage(p Progress) string {
	msg := p.Dataset + ": batch " + itoa(p.BatchID) + ", " + itoa(p.NumInputRows) + " rows in, " + itoa(p.NumOutputRows) + " out"
	if p.DroppedByExpectations > 0 {
		msg += ", " + itoa(p.DroppedByExpectations) + " dropped by expectations"
	}
	if p.DroppedByWatermark > 0 {
		msg += ", " + itoa(p.DroppedByWatermark) + " late rows dropped"
	}
	return msg
}

func itoa(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

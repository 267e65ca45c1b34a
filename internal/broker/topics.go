package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrTopicExists is returned by [CreateTopic] when the topic already exists.
var ErrTopicExists = errors.New("already exists")

// TopicInfo describes one topic as [ListTopics] sees it.
type TopicInfo struct {
	Name       string
	Partitions []PartitionInfo // ordered by partition number

	// Records is the sum over partitions of EndOffset-StartOffset. Kafka
	// offsets also count transaction markers, so for transactionally
	// written topics this overstates the data records somewhat.
	Records int64
}

// PartitionInfo holds one partition's offsets.
type PartitionInfo struct {
	Partition   int32
	StartOffset int64 // log start offset: the first offset still retained
	EndOffset   int64 // high watermark: the offset the next record gets
}

// CreateTopic creates topic name with the given number of partitions and
// the cluster's default replication factor. partitions < 1 asks for the
// broker's default. It works against any Kafka 2.4+ cluster, cl's
// ownership stays with the caller, and ctx bounds the request. It returns
// an error wrapping [ErrTopicExists] if the topic is already there, and
// one wrapping kerr.InvalidTopicException for a name Kafka would refuse
// (checked here because the embedded broker does not check names).
func CreateTopic(ctx context.Context, cl *kgo.Client, name string, partitions int32) error {
	if err := validTopicName(name); err != nil {
		return err
	}
	if partitions < 1 {
		partitions = -1
	}
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, name)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Errorf("topic %s: %w (list topics with: sluice topic list)", name, ErrTopicExists)
	case resp.ErrMessage != "":
		return fmt.Errorf("creating topic %s: %w: %s", name, err, resp.ErrMessage)
	default:
		return fmt.Errorf("creating topic %s: %w", name, err)
	}
}

// ListTopics returns the cluster's non-internal topics ordered by name,
// with each partition's start and end offsets. It issues one metadata and
// two ListOffsets rounds through cl, bounded by ctx, and works against any
// Kafka cluster.
func ListTopics(ctx context.Context, cl *kgo.Client) ([]TopicInfo, error) {
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	if err := details.Error(); err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	names := details.Names()
	if len(names) == 0 {
		return nil, nil
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets: %w", err)
	}

	infos := make([]TopicInfo, 0, len(names))
	for _, name := range names {
		ti := TopicInfo{Name: name}
		for _, pd := range details[name].Partitions {
			pi := PartitionInfo{Partition: pd.Partition}
			if o, ok := starts.Lookup(name, pd.Partition); ok {
				pi.StartOffset = o.Offset
			}
			if o, ok := ends.Lookup(name, pd.Partition); ok {
				pi.EndOffset = o.Offset
			}
			ti.Records += pi.EndOffset - pi.StartOffset
			ti.Partitions = append(ti.Partitions, pi)
		}
		slices.SortFunc(ti.Partitions, func(a, b PartitionInfo) int { return int(a.Partition - b.Partition) })
		infos = append(infos, ti)
	}
	slices.SortFunc(infos, func(a, b TopicInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}

// validTopicName applies Kafka's rule (kafka.common.Topic): 1 to 249
// characters of [a-zA-Z0-9._-], and not "." or "..".
func validTopicName(name string) error {
	bad := name == "" || name == "." || name == ".." || len(name) > 249
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("creating topic %q: %w: names are 1 to 249 characters of a-z A-Z 0-9 . _ -", name, kerr.InvalidTopicException)
	}
	return nil
}

// Package pipeline runs declarative pipelines: a SQL script of CREATE
// STREAMING TABLE, CREATE MATERIALIZED VIEW and CREATE TEMPORARY VIEW
// statements (the Delta Live Tables dialect, see docs/sql.md) compiled into a
// graph of datasets and run in dependency order over sluice's tables.
//
//	g, err := pipeline.Compile(ctx, src, pipeline.CompileOptions{Lookup: ...})
//	r := pipeline.NewRunner(name, g, store, pipeline.RunOptions{}, emit)
//	res, err := r.Round(ctx, nil) // bring every table up to date once
//
// # Structure
//
// graph.go resolves names and orders datasets; plan.go plans each query into
// a tree of nodes (scan, filter, project, stream–static join, aggregation),
// binding expressions with package expr; exec.go runs a plan's left spine as
// a chain of steps over Arrow batches, with the aggregation of package
// engine/agg as its stateful step and expectations as its last; run.go runs
// micro-batches and commits them; status.go holds progress and events;
// manager.go keeps pipelines running inside `sluice up`.
//
// # Exactly once
//
// A streaming table reads the rows its source appended after the snapshot
// recorded in its own last commit (table.Changes), computes, and commits its
// output, the new source position and its aggregation state file in one
// table commit (snapshot properties sluice.pipeline.*). A crash before the
// commit leaves the table at the previous checkpoint, and the same source
// rows are read again; micro-batch boundaries are source snapshot boundaries
// bounded by RunOptions, so a replay cuts the same batches. A materialized
// view is recomputed in one overwrite commit when any table it reads moved.
package pipeline

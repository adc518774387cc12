package connector

import (
	"context"

	"github.com/ferrydb/ferry/model"
)

// ObjectReader is a source that can list the functions, procedures,
// views, materialized views and triggers of its tables' schemas that a
// destination creates at cutover.
type ObjectReader interface {
	// Objects lists the objects of the given tables' schemas, and the
	// triggers of those tables, as they are now (an object added while
	// the flow ran is included). Objects that belong to an extension are
	// left out: creating the extension brings them.
	Objects(ctx context.Context, tables []model.Namespace) ([]model.Object, error)
}

// ObjectBuilder is a destination that creates objects at cutover.
type ObjectBuilder interface {
	// BuildObjects creates the objects it does not have yet (by ID), each
	// after those it Needs, in one transaction: on failure nothing is
	// created. An object it cannot create as the source has it (a role,
	// a language, a table or a function it lacks, or one of its Needs
	// left out) is not created and is listed in ObjectsBuilt.Issues with
	// the statements to run. Running it again creates nothing twice.
	BuildObjects(ctx context.Context, objs []model.Object) (ObjectsBuilt, error)
	// CheckObjects lists, before a flow starts (ferry plan), the objects
	// it lacks that it would not create as the source has them for want
	// of something no flow brings (a role, a language). It writes
	// nothing.
	CheckObjects(ctx context.Context, objs []model.Object) ([]ObjectIssue, error)
}

// ObjectsBuilt is what BuildObjects did.
type ObjectsBuilt struct {
	// Created counts the objects created now by kind; Present those there
	// already.
	Created map[model.ObjectKind]int
	Present int
	// Issues are the objects not created, or created but not as the
	// source has them (another owner), with what to do.
	Issues []ObjectIssue
}

// ObjectIssue is an object a destination did not create as the source has
// it, and what the user should run.
type ObjectIssue struct {
	// Object names it ("view app.v"); Created says whether it was
	// created all the same.
	Object  string `json:"object"`
	Created bool   `json:"created"`
	Problem string `json:"problem"`
	Fix     string `json:"fix"`
}

func (i ObjectIssue) String() string {
	s := i.Object
	if i.Created {
		s += " (created)"
	} else {
		s += " (not created)"
	}
	return s + ": " + i.Problem + "; to fix: " + i.Fix
}

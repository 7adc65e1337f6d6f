"""Workflow modules used by the isolation, shims, msgpack and LocalWorkflowRunner tests.

They are real modules (not defined in test files) because isolation works on the state of the
module a workflow class is defined in.
"""

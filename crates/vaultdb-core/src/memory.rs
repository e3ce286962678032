//! In-memory storage backend (placeholder: filled in by the backend work).

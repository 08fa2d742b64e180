//! adam-core

// Package codeshape holds no code, only tests of the code base's shape:
// every package has a doc comment, generated protobuf types stay out of the
// node library's API, and libraries log only through the loggers they are
// given.
package codeshape

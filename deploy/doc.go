// Package deploy holds the ways to run Slipstream where applications run, and the tests that
// keep them working: the container image (container/Dockerfile), Docker Compose files
// (compose.yaml, compose.split.yaml), Kubernetes manifests (kubernetes/: an app with
// Slipstream as a native sidecar, a regional pool) and a systemd unit (systemd/). README.md
// explains each.
//
// The package has no code: deploy_test.go decodes every manifest strictly into the
// Kubernetes API types, loads the compose files with the compose-spec loader, checks the
// TOML each one carries with the config package's own validation, verifies the unit with
// systemd-analyze, and builds and runs the image when podman or buildah is installed. A
// typo in any of them fails a test.
package deploy

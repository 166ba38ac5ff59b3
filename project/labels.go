package project

// The labels docker compose puts on every container, so that a user's
// scripts and habits carry over.
const (
	LabelProject     = "com.docker.compose.project"
	LabelService     = "com.docker.compose.service"
	LabelNumber      = "com.docker.compose.container-number"
	LabelConfigHash  = "com.docker.compose.config-hash"
	LabelOneoff      = "com.docker.compose.oneoff"
	LabelWorkingDir  = "com.docker.compose.project.working_dir"
	LabelConfigFiles = "com.docker.compose.project.config_files"
	LabelImage       = "com.docker.compose.image"
	LabelVersion     = "com.docker.compose.version"
	LabelVolume      = "com.docker.compose.volume"
	// LabelAnonymous marks an anonymous volume, as docker labels them.
	LabelAnonymous = "com.docker.volume.anonymous"
)

// Version is the berth version recorded in com.docker.compose.version.
const Version = "0.1.0"

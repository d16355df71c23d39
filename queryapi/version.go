package queryapi

// APIVersion is the ElastiCache API version (the Version parameter) the
// service answers, exported so that what the emulator reports about itself
// (elasticache-local --version) names the same one the codec checks.
const APIVersion = apiVersion

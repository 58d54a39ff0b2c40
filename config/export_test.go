package config

// YAMLName exports yamlName to the external tests, which walk the Config
// struct by its YAML keys as the layers do.
var YAMLName = yamlName

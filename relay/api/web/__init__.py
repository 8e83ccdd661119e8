"""Static files of the status page, and the status API's OpenAPI description."""

// Global test set-up. The S3 part (start the project's RGW when S3_ENDPOINT is unset) lands with S3Storage.
export default function setup(): void {}

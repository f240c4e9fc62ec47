"""Every size limit on user input, in one place (the README quotes them)."""

# Images: a 50-megapixel phone photo passes; a decompression bomb (say 30,000 x 30,000 pixels)
# is refused before a single pixel is decoded. 64 MP of RGB is 192 MB of memory.
MAX_IMAGE_PIXELS = 64_000_000

# Dataset zips: checked from the zip's directory before anything is extracted.
MAX_ZIP_ENTRIES = 50_000
# The zip's directory, read before any entry is counted: room for 50,000 entries with long names.
# A 500 MB upload of nothing but directory would otherwise be ten million entries in memory.
MAX_ZIP_DIRECTORY_BYTES = MAX_ZIP_ENTRIES * 256
MAX_ZIP_TOTAL_BYTES = 2 * 1024**3  # uncompressed
MAX_ZIP_COMPRESSION_RATIO = 200  # images barely compress, bombs compress ~1000x
# The ratio counts for the whole zip, and for each entry, once they expand past this size: a small
# blank BMP compresses 300x and is no threat, and the total above bounds what many small ones expand to.
ZIP_RATIO_MIN_BYTES = 10 * 1024**2
MAX_FOLDER_DEPTH = 12  # nesting below the dataset root

# Datasets: class folders. More than this is almost always a wrong folder picked.
MAX_CLASSES = 20

# Uploads to the web app, checked before any decoding. A phone photo is under 20 MB; the dataset
# limit is also the server's hard cap on any single upload.
MAX_IMAGE_UPLOAD_BYTES = 20 * 1024**2
MAX_DATASET_UPLOAD_BYTES = 500 * 1024**2

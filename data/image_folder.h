// data/image_folder.h: image datasets from a folder tree or a CSV listing. Formats: PNG, JPEG and
// BMP (decoded by stb_image, with a guard against a JPEG bug of stb 2.27) and binary PNM
// (P5 / P6, 8- or 16-bit, scaled to 0..255; decoded by our own strict code, stb 2.27 mishandles it).
// Files are recognised by extension: .png .jpg .jpeg .bmp .pgm .ppm .pnm (any case).
//
// Folder layout: root/<class>/<image>; classes are the subfolders sorted by name (byte order),
// label = position; files are sorted by name; hidden entries (".x") and files without one of the
// extensions above are skipped; an empty class folder is an Error.
// CSV listing: a header "file,<target 1>,<target 2>,..." then one row per image: its path
// (relative to the CSV's folder unless absolute) and one integer label per target (>= 0).
//
// Images are not resized: all must have the same width and height, else an Error naming the
// file, its size and the size of the first image. Channels: options.channels (1 grey, 2 grey +
// alpha, 3 RGB, 4 RGBA) or, when 0, those of the first image (the others are converted to it).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace polyhead::data {

struct ImageFolderOptions {
  int channels = 0;                         // 0: as the first image
  int64_t max_pixels = int64_t(1) << 26;    // per image (width * height); larger images are an Error
};

struct ImageSet {
  Tensor images;                          // (N, C, H, W) u8
  std::vector<std::string> target_names;  // folder: {"class"}; CSV: the header's label columns
  std::vector<Tensor> targets;            // one (N) i64 per target
  std::vector<std::string> classes;       // folder mode: class names (label = index)
  std::vector<std::string> files;         // N paths
};

ImageSet load_image_folder(const std::string& root, const ImageFolderOptions& options = {});
ImageSet load_image_list(const std::string& csv_path, const ImageFolderOptions& options = {});

// Decodes one image file to (C, H, W) u8 (channels 0 = as stored).
Tensor read_image(const std::string& path, int channels = 0, int64_t max_pixels = int64_t(1) << 26);

// x: (N, C, H, W) f32 in [0, 1]; y0 .. y{K-1} the targets.
std::shared_ptr<TensorDataset> image_dataset(const ImageSet& s);

}  // namespace polyhead::data

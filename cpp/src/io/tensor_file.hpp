// Reading and writing .safetensors files as rnnkit uses them (see python/rnnkit/io.py for the layout and
// the CRC-32 that covers metadata and tensors). The reader treats the file as hostile: every length, offset
// and shape is checked before use, and any problem is a std::invalid_argument naming the file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rnnkit {
inline namespace v0 {
namespace detail {

struct Tensor {
    std::string dtype;                 // safetensors dtype: "F32", "F64", "I64", ...
    std::vector<std::int64_t> shape;
    std::vector<unsigned char> bytes;  // little-endian, row-major
};

struct TensorFile {
    std::map<std::string, Tensor> tensors;
    std::map<std::string, std::string> metadata;
};

TensorFile read_tensor_file(const std::string& path);
// Adds rnnkit.format and rnnkit.crc32 to the metadata, then writes atomically (temporary file + rename).
void write_tensor_file(const std::string& path, TensorFile file);
// CRC-32 (hex) over sorted "key=value\n" metadata lines (except rnnkit.crc32) and, per tensor in name order,
// "name:<numpy dtype str>:<Python shape tuple>\n" followed by its bytes: the same as python/rnnkit/io.py.
std::string rnnkit_checksum(const TensorFile& file);

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit

#include "io/tensor_file.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>

#include "io/json.hpp"

namespace rnnkit {
inline namespace v0 {
namespace detail {

namespace {

constexpr std::uint64_t kMaxHeader = 100u * 1000u * 1000u;

std::uint32_t crc32_update(std::uint32_t crc, const unsigned char* data, std::size_t n) {
    static std::uint32_t table[256];
    static bool ready = [] {
        for (std::uint32_t k = 0; k < 256; ++k) {
            std::uint32_t c = k;
            for (int j = 0; j < 8; ++j) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[k] = c;
        }
        return true;
    }();
    (void)ready;
    crc = ~crc;
    for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

std::uint32_t crc32_update(std::uint32_t crc, const std::string& s) {
    return crc32_update(crc, reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

std::size_t dtype_size(const std::string& dtype) {
    if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
    if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
    if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
    if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
    return 0;
}

std::string numpy_dtype_str(const std::string& dtype) {
    if (dtype == "F32") return "<f4";
    if (dtype == "F64") return "<f8";
    if (dtype == "I64") return "<i8";
    if (dtype == "I32") return "<i4";
    if (dtype == "F16") return "<f2";
    if (dtype == "U8") return "|u1";
    if (dtype == "I8") return "|i1";
    if (dtype == "BOOL") return "|b1";
    return dtype;
}

std::string python_shape(const std::vector<std::int64_t>& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

std::string rnnkit_checksum(const TensorFile& file) {
    std::uint32_t crc = 0;
    for (const auto& kv : file.metadata)  // std::map: sorted by key, byte order = code point order for UTF-8
        if (kv.first != "rnnkit.crc32") crc = crc32_update(crc, kv.first + "=" + kv.second + "\n");
    for (const auto& kv : file.tensors) {
        crc = crc32_update(crc, kv.first + ":" + numpy_dtype_str(kv.second.dtype) + ":" +
                                    python_shape(kv.second.shape) + "\n");
        crc = crc32_update(crc, kv.second.bytes.data(), kv.second.bytes.size());
    }
    char hex[9];
    std::snprintf(hex, sizeof hex, "%08x", crc);
    return hex;
}

TensorFile read_tensor_file(const std::string& path) {
    auto fail = [&path](const std::string& why) -> void {
        throw std::invalid_argument("rnnkit model file '" + path + "': " + why);
    };
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot open (no such file or no permission)");
    in.seekg(0, std::ios::end);
    const std::streamoff size_signed = in.tellg();
    if (size_signed < 0) fail("cannot determine its size");
    const std::uint64_t size = std::uint64_t(size_signed);
    in.seekg(0);
    if (size < 8) fail("truncated: " + std::to_string(size) + " bytes, not a safetensors file");
    unsigned char len_bytes[8];
    in.read(reinterpret_cast<char*>(len_bytes), 8);
    std::uint64_t header_len = 0;
    for (int k = 7; k >= 0; --k) header_len = (header_len << 8) | len_bytes[k];
    if (header_len > kMaxHeader) fail("header length " + std::to_string(header_len) + " is implausibly large");
    if (header_len > size - 8)
        fail("header length " + std::to_string(header_len) + " exceeds the file (" + std::to_string(size) +
             " bytes): truncated or corrupted");
    std::string header(std::size_t(header_len), '\0');
    in.read(&header[0], std::streamsize(header_len));
    const std::uint64_t data_len = size - 8 - header_len;
    std::vector<unsigned char> data(static_cast<std::size_t>(data_len));
    if (data_len) in.read(reinterpret_cast<char*>(data.data()), std::streamsize(data_len));
    if (!in) fail("read error");

    json::Value root;
    try {
        root = json::parse(header);
    } catch (const std::invalid_argument& e) {
        fail(std::string("header is not valid JSON (") + e.what() + ")");
    }
    if (root.type != json::Value::Type::Object) fail("header is not a JSON object");
    TensorFile file;
    for (const auto& kv : root.object) {
        const std::string& name = kv.first;
        const json::Value& entry = kv.second;
        try {
            if (name == "__metadata__") {
                if (entry.type != json::Value::Type::Object) fail("__metadata__ is not an object");
                for (const auto& m : entry.object) file.metadata[m.first] = m.second.as_string("__metadata__ value");
                continue;
            }
            Tensor t;
            t.dtype = entry.at("dtype", name).as_string(name + ".dtype");
            const std::size_t item = dtype_size(t.dtype);
            if (!item) fail("tensor '" + name + "' has unknown dtype '" + t.dtype + "'");
            std::uint64_t count = 1;
            for (const auto& d : entry.at("shape", name).as_array(name + ".shape")) {
                const std::int64_t n = d.as_int(name + ".shape", 0, std::int64_t(1) << 40);
                if (n && count > std::numeric_limits<std::uint64_t>::max() / std::uint64_t(n))
                    fail("tensor '" + name + "' shape overflows");
                count *= std::uint64_t(n);
                t.shape.push_back(n);
            }
            const auto& offsets = entry.at("data_offsets", name).as_array(name + ".data_offsets");
            if (offsets.size() != 2) fail("tensor '" + name + "' data_offsets must hold two numbers");
            const std::int64_t limit = std::int64_t(data_len);
            const std::int64_t begin = offsets[0].as_int(name + ".data_offsets", 0, limit);
            const std::int64_t end = offsets[1].as_int(name + ".data_offsets", begin, limit);
            if (count > data_len / item || std::uint64_t(end - begin) != count * item)
                fail("tensor '" + name + "' needs " + std::to_string(count) + " x " + std::to_string(item) +
                     " bytes but its data_offsets span " + std::to_string(end - begin));
            t.bytes.assign(data.begin() + begin, data.begin() + end);
            file.tensors.emplace(name, std::move(t));
        } catch (const std::invalid_argument& e) {
            const std::string what = e.what();
            if (what.rfind("rnnkit model file", 0) == 0) throw;
            fail("malformed header entry: " + what);
        }
    }
    auto format = file.metadata.find("rnnkit.format");
    if (format == file.metadata.end() || format->second != "1")
        fail("not an rnnkit file (no rnnkit.format 1 in its metadata)");
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION  // fuzz builds skip it, so mutated files reach the parsers behind
    auto crc = file.metadata.find("rnnkit.crc32");
    if (crc == file.metadata.end() || crc->second != rnnkit_checksum(file))
        fail("checksum mismatch: the file is corrupted or was modified");
#endif
    return file;
}

void write_tensor_file(const std::string& path, TensorFile file) {
    file.metadata["rnnkit.format"] = "1";
    file.metadata["rnnkit.crc32"] = rnnkit_checksum(file);
    json::Writer w;
    w.begin_object();
    std::uint64_t offset = 0;
    for (const auto& kv : file.tensors) {
        w.key(kv.first).begin_object().key("dtype").value(kv.second.dtype).key("shape").begin_array();
        for (auto d : kv.second.shape) w.value(std::int64_t(d));
        w.end_array().key("data_offsets").begin_array().value(std::uint64_t(offset));
        offset += kv.second.bytes.size();
        w.value(std::uint64_t(offset)).end_array().end_object();
    }
    w.key("__metadata__").begin_object();
    for (const auto& kv : file.metadata) w.key(kv.first).value(kv.second);
    w.end_object().end_object();
    std::string header = w.str();
    while ((8 + header.size()) % 8) header += ' ';

    std::string tmp = path + ".tmp-XXXXXX";
    std::vector<char> name(tmp.begin(), tmp.end());
    name.push_back('\0');
    const int fd = mkstemp(name.data());
    if (fd < 0) throw std::runtime_error("cannot create a temporary file next to '" + path + "'");
    bool ok = true;
    auto put = [&](const void* p, std::size_t n) {
        const char* c = static_cast<const char*>(p);
        while (ok && n) {
            const ssize_t w = ::write(fd, c, n);
            if (w <= 0) ok = false;
            else {
                c += w;
                n -= std::size_t(w);
            }
        }
    };
    unsigned char len_bytes[8];
    std::uint64_t len = header.size();
    for (int k = 0; k < 8; ++k) len_bytes[k] = (unsigned char)(len >> (8 * k));
    put(len_bytes, 8);
    put(header.data(), header.size());
    for (const auto& kv : file.tensors) put(kv.second.bytes.data(), kv.second.bytes.size());
    ok = ok && ::fsync(fd) == 0;
    ok = (::close(fd) == 0) && ok;
    if (!ok || std::rename(name.data(), path.c_str()) != 0) {
        std::remove(name.data());
        throw std::runtime_error("cannot write '" + path + "'");
    }
}

}  // namespace detail
}  // namespace v0
}  // namespace rnnkit

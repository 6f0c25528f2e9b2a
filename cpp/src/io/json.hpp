// A small JSON reader/writer for safetensors headers and rnnkit's model metadata. The reader is meant for
// untrusted input: it checks every index, limits nesting depth, and throws std::invalid_argument on any
// malformed text.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace rnnkit {
inline namespace v0 {
namespace json {

struct Value {
    enum class Type { Null, Bool, Number, String, Array, Object };
    Type type = Type::Null;
    bool boolean = false;
    double number = 0;
    std::string string;
    std::vector<Value> array;
    std::vector<std::pair<std::string, Value>> object;  // in document order

    bool is_null() const { return type == Type::Null; }
    // Typed access; each throws std::invalid_argument naming `what` when the type is wrong or a key is missing.
    const Value& at(const std::string& key, const std::string& what) const;
    const Value* find(const std::string& key) const;
    double as_number(const std::string& what) const;
    std::int64_t as_int(const std::string& what, std::int64_t lo, std::int64_t hi) const;
    bool as_bool(const std::string& what) const;
    const std::string& as_string(const std::string& what) const;
    const std::vector<Value>& as_array(const std::string& what) const;
};

Value parse(const std::string& text, int max_depth = 64);

// A parsed value written back as JSON text.
std::string dump(const Value& v);

// Writing: a string literal with JSON escapes.
std::string quote(const std::string& s);

// Writes a JSON document front to back: Writer w; w.begin_object().key("a").value(1).end_object(); w.str().
// Commas and quoting are its business; numbers keep every digit (%.17g) so a double reads back equal.
class Writer {
public:
    Writer& begin_object();
    Writer& end_object();
    Writer& begin_array();
    Writer& end_array();
    Writer& key(const std::string& k);
    Writer& value(const std::string& s);
    Writer& value(const char* s);  // nullptr writes null
    Writer& value(bool b);
    Writer& value(double d);
    Writer& value(int i) { return value(static_cast<std::int64_t>(i)); }
    Writer& value(std::int64_t i);
    Writer& value(std::uint64_t u);
    Writer& null();
    // A value already written as JSON text (checked by the caller), e.g. metadata a user stored.
    Writer& raw(const std::string& json_text);
    const std::string& str() const { return out_; }

private:
    void separate();  // a comma before every element but the first of its container
    std::string out_;
    std::vector<bool> first_;  // per open container: no element written yet
    bool after_key_ = false;
};

}  // namespace json
}  // namespace v0
}  // namespace rnnkit

#include "io/json.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace rnnkit {
inline namespace v0 {
namespace json {

namespace {

struct Parser {
    const std::string& s;
    std::size_t i = 0;
    int max_depth;

    [[noreturn]] void fail(const std::string& what) const {
        throw std::invalid_argument("JSON: " + what + " at offset " + std::to_string(i));
    }
    void skip_ws() {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    }
    char peek() {
        skip_ws();
        if (i >= s.size()) fail("unexpected end of text");
        return s[i];
    }
    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++i;
    }
    bool literal(const char* word) {
        std::size_t n = std::char_traits<char>::length(word);
        if (s.compare(i, n, word) == 0) {
            i += n;
            return true;
        }
        return false;
    }
    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xC0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += char(0xE0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        } else {
            out += char(0xF0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3F));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        }
    }
    std::uint32_t hex4() {
        if (i + 4 > s.size()) fail("truncated \\u escape");
        std::uint32_t v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = s[i++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= std::uint32_t(c - '0');
            else if (c >= 'a' && c <= 'f') v |= std::uint32_t(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= std::uint32_t(c - 'A' + 10);
            else fail("bad \\u escape");
        }
        return v;
    }
    std::string string_literal() {
        expect('"');
        std::string out;
        while (true) {
            if (i >= s.size()) fail("unterminated string");
            char c = s[i++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i >= s.size()) fail("unterminated escape");
            char e = s[i++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    std::uint32_t cp = hex4();
                    if (cp >= 0xD800 && cp <= 0xDBFF) {  // surrogate pair
                        if (!(i + 1 < s.size() && s[i] == '\\' && s[i + 1] == 'u')) fail("lone surrogate");
                        i += 2;
                        std::uint32_t lo = hex4();
                        if (lo < 0xDC00 || lo > 0xDFFF) fail("bad surrogate pair");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        fail("lone surrogate");
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: fail("bad escape");
            }
        }
    }
    double number_literal() {
        std::size_t start = i;
        if (i < s.size() && s[i] == '-') ++i;
        auto digits = [&] {
            std::size_t d = i;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
            return i - d;
        };
        if (digits() == 0) fail("bad number");
        if (i < s.size() && s[i] == '.') {
            ++i;
            if (digits() == 0) fail("bad number");
        }
        if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
            ++i;
            if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
            if (digits() == 0) fail("bad number");
        }
        std::string text = s.substr(start, i - start);
        double v = std::strtod(text.c_str(), nullptr);
        if (!std::isfinite(v)) fail("number out of range");
        return v;
    }
    Value value(int depth) {
        if (depth > max_depth) fail("nesting too deep");
        Value v;
        char c = peek();
        if (c == '{') {
            v.type = Value::Type::Object;
            ++i;
            if (peek() == '}') {
                ++i;
                return v;
            }
            while (true) {
                if (peek() != '"') fail("expected a key");
                std::string key = string_literal();
                expect(':');
                v.object.emplace_back(std::move(key), value(depth + 1));
                char d = peek();
                ++i;
                if (d == '}') return v;
                if (d != ',') fail("expected ',' or '}'");
            }
        }
        if (c == '[') {
            v.type = Value::Type::Array;
            ++i;
            if (peek() == ']') {
                ++i;
                return v;
            }
            while (true) {
                v.array.push_back(value(depth + 1));
                char d = peek();
                ++i;
                if (d == ']') return v;
                if (d != ',') fail("expected ',' or ']'");
            }
        }
        if (c == '"') {
            v.type = Value::Type::String;
            v.string = string_literal();
            return v;
        }
        if (literal("true")) {
            v.type = Value::Type::Bool;
            v.boolean = true;
            return v;
        }
        if (literal("false")) {
            v.type = Value::Type::Bool;
            return v;
        }
        if (literal("null")) return v;
        if (literal("NaN") || literal("Infinity") || literal("-Infinity")) fail("non-finite number");
        v.type = Value::Type::Number;
        v.number = number_literal();
        return v;
    }
};

[[noreturn]] void type_error(const std::string& what, const char* expected) {
    throw std::invalid_argument(what + ": expected " + expected);
}

}  // namespace

Value parse(const std::string& text, int max_depth) {
    Parser p{text, 0, max_depth};
    Value v = p.value(0);
    p.skip_ws();
    if (p.i != text.size()) p.fail("trailing characters");
    return v;
}

const Value* Value::find(const std::string& key) const {
    if (type != Type::Object) return nullptr;
    for (const auto& kv : object)
        if (kv.first == key) return &kv.second;
    return nullptr;
}

const Value& Value::at(const std::string& key, const std::string& what) const {
    if (type != Type::Object) type_error(what, "an object");
    const Value* v = find(key);
    if (!v) throw std::invalid_argument(what + ": missing key '" + key + "'");
    return *v;
}

double Value::as_number(const std::string& what) const {
    if (type != Type::Number) type_error(what, "a number");
    return number;
}

std::int64_t Value::as_int(const std::string& what, std::int64_t lo, std::int64_t hi) const {
    if (type != Type::Number || number != std::floor(number) || number < double(lo) || number > double(hi))
        throw std::invalid_argument(what + ": expected an integer in " + std::to_string(lo) + ".." +
                                    std::to_string(hi));
    return std::int64_t(number);
}

bool Value::as_bool(const std::string& what) const {
    if (type != Type::Bool) type_error(what, "true or false");
    return boolean;
}

const std::string& Value::as_string(const std::string& what) const {
    if (type != Type::String) type_error(what, "a string");
    return string;
}

const std::vector<Value>& Value::as_array(const std::string& what) const {
    if (type != Type::Array) type_error(what, "an array");
    return array;
}

std::string quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += char(c);
                }
        }
    }
    return out + "\"";
}

std::string dump(const Value& v) {
    Writer w;
    struct Emit {
        static void value(Writer& w, const Value& v) {
            switch (v.type) {
                case Value::Type::Null: w.null(); break;
                case Value::Type::Bool: w.value(v.boolean); break;
                case Value::Type::Number: w.value(v.number); break;
                case Value::Type::String: w.value(v.string); break;
                case Value::Type::Array:
                    w.begin_array();
                    for (const auto& e : v.array) value(w, e);
                    w.end_array();
                    break;
                case Value::Type::Object:
                    w.begin_object();
                    for (const auto& kv : v.object) {
                        w.key(kv.first);
                        value(w, kv.second);
                    }
                    w.end_object();
                    break;
            }
        }
    };
    Emit::value(w, v);
    return w.str();
}

Writer& Writer::begin_object() {
    separate();
    out_ += '{';
    first_.push_back(true);
    return *this;
}

Writer& Writer::end_object() {
    out_ += '}';
    first_.pop_back();
    return *this;
}

Writer& Writer::begin_array() {
    separate();
    out_ += '[';
    first_.push_back(true);
    return *this;
}

Writer& Writer::end_array() {
    out_ += ']';
    first_.pop_back();
    return *this;
}

Writer& Writer::key(const std::string& k) {
    separate();
    out_ += quote(k) + ": ";
    after_key_ = true;
    return *this;
}

void Writer::separate() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!first_.empty()) {
        if (!first_.back()) out_ += ", ";
        first_.back() = false;
    }
}

Writer& Writer::value(const std::string& s) {
    separate();
    out_ += quote(s);
    return *this;
}

Writer& Writer::value(const char* s) { return s ? value(std::string(s)) : null(); }

Writer& Writer::value(bool b) {
    separate();
    out_ += b ? "true" : "false";
    return *this;
}

Writer& Writer::value(double d) {
    separate();
    if (!std::isfinite(d)) throw std::invalid_argument("json: cannot write a non-finite number");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", d);
    out_ += buf;
    return *this;
}

Writer& Writer::value(std::int64_t i) {
    separate();
    out_ += std::to_string(i);
    return *this;
}

Writer& Writer::value(std::uint64_t u) {
    separate();
    out_ += std::to_string(u);
    return *this;
}

Writer& Writer::null() {
    separate();
    out_ += "null";
    return *this;
}

Writer& Writer::raw(const std::string& json_text) {
    separate();
    out_ += json_text;
    return *this;
}

}  // namespace json
}  // namespace v0
}  // namespace rnnkit

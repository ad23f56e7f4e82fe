#pragma once
/// @file
/// Reading and writing NumPy's `.npz` archives (an uncompressed zip of `.npy` arrays), so that
/// checkpoints and exported weights open with `numpy.load`. Every size, offset and checksum
/// read from a file is checked; a damaged file throws snap::FormatError and never crashes.

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "snap/core/error.hpp"
#include "snap/core/types.hpp"

namespace snap {

/// A file that is not a valid archive of the expected content (truncated, corrupted, wrong
/// version or shape), or that cannot be read or written.
class FormatError : public Error {
public:
  using Error::Error;
};

namespace detail {

/// The eight tables of CRC-32 by slicing-by-8 (the reflected polynomial 0xEDB88320). Plain
/// arrays: indexing them stays a load in unoptimised (Debug) builds too.
struct CrcTables {
  std::uint32_t t[8][256];
};

inline const CrcTables& crcTables() {
  static const CrcTables tables = [] {
    CrcTables tables{};
    auto& t = tables.t;
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i)
      for (std::size_t slice = 1; slice < 8; ++slice) t[slice][i] = (t[slice - 1][i] >> 8) ^ t[0][t[slice - 1][i] & 0xFFU];
    return tables;
  }();
  return tables;
}

/// CRC-32 (IEEE 802.3, as zlib's crc32), the checksum of zip entries; `crc` continues a
/// previous value, so that crc32(b, crc32(a)) is the CRC of a followed by b.
inline std::uint32_t crc32(const std::uint8_t* data, std::size_t size, std::uint32_t crc = 0) {
  const auto& t = crcTables().t;
  crc = ~crc;
  for (; size >= 8; data += 8, size -= 8) {
    // The eight bytes as two little-endian words, whatever the machine's byte order.
    const std::uint32_t low = (data[0] | std::uint32_t{data[1]} << 8 | std::uint32_t{data[2]} << 16 |
                               std::uint32_t{data[3]} << 24) ^ crc;
    const std::uint32_t high =
        data[4] | std::uint32_t{data[5]} << 8 | std::uint32_t{data[6]} << 16 | std::uint32_t{data[7]} << 24;
    crc = t[7][low & 0xFFU] ^ t[6][(low >> 8) & 0xFFU] ^ t[5][(low >> 16) & 0xFFU] ^ t[4][low >> 24] ^
          t[3][high & 0xFFU] ^ t[2][(high >> 8) & 0xFFU] ^ t[1][(high >> 16) & 0xFFU] ^ t[0][high >> 24];
  }
  for (; size > 0; ++data, --size) crc = t[0][(crc ^ *data) & 0xFFU] ^ (crc >> 8);
  return ~crc;
}

template <class T>
constexpr const char* npyType() {
  if constexpr (std::is_same_v<T, float>) return "<f4";
  else if constexpr (std::is_same_v<T, double>) return "<f8";
  else if constexpr (std::is_same_v<T, std::int64_t>) return "<i8";
  else if constexpr (std::is_same_v<T, std::int32_t>) return "<i4";
  else if constexpr (std::is_same_v<T, std::uint64_t>) return "<u8";
  else if constexpr (std::is_same_v<T, std::uint8_t>) return "|u1";
  else static_assert(sizeof(T) == 0, "snap: unsupported npy element type");
}

inline void putLittle(std::vector<std::uint8_t>& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
}
inline std::uint64_t getLittle(const std::uint8_t* in, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<std::uint64_t>(in[i]) << (8 * i);
  return value;
}

}  // namespace detail

/// One n-dimensional array: a NumPy type string ("<f8", "<i8", …), a shape, and its bytes in
/// C (row-major) order, little-endian.
struct NpyArray {
  std::string type;                 ///< "<f4", "<f8", "<i8", "<i4", "<u8" or "|u1"
  std::vector<std::int64_t> shape;  ///< the extents, outermost first; empty for a scalar
  std::vector<std::uint8_t> bytes;  ///< the elements in C order, little-endian

  /// Number of elements.
  std::int64_t size() const {
    std::int64_t count = 1;
    for (std::int64_t extent : shape) count *= extent;
    return count;
  }

  /// An array of `values` with the given shape (the product of the shape must be values.size()).
  template <class T>
  static NpyArray of(const T* values, std::vector<std::int64_t> shape) {
    NpyArray array{detail::npyType<T>(), std::move(shape), {}};
    const auto count = static_cast<std::size_t>(array.size());
    array.bytes.resize(count * sizeof(T));
    if (count > 0) std::memcpy(array.bytes.data(), values, array.bytes.size());
    return array;
  }
  /// An Eigen matrix or vector, stored row-major with its shape (vectors are one-dimensional).
  template <class Derived>
  static NpyArray of(const Eigen::DenseBase<Derived>& matrix) {
    using T = typename Derived::Scalar;
    const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rowMajor = matrix;
    if (Derived::ColsAtCompileTime == 1) return of(rowMajor.data(), {static_cast<std::int64_t>(matrix.rows())});
    return of(rowMajor.data(), {static_cast<std::int64_t>(matrix.rows()), static_cast<std::int64_t>(matrix.cols())});
  }
  /// A zero-dimensional array holding `value`.
  template <class T>
  static NpyArray scalar(T value) {
    return of(&value, {});
  }

  /// The elements as T; throws FormatError naming `name` unless the type is T's.
  template <class T>
  std::vector<T> values(std::string_view name) const {
    if (type != detail::npyType<T>())
      detail::fail<FormatError>(name, std::string("an array of type ") + detail::npyType<T>(), type);
    if (bytes.size() != static_cast<std::size_t>(size()) * sizeof(T))
      detail::fail<FormatError>(name, std::to_string(size() * static_cast<std::int64_t>(sizeof(T))) +
                                          " bytes for its shape", bytes.size());
    std::vector<T> out(static_cast<std::size_t>(size()));
    if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
    return out;
  }
};

/// Named arrays, in name order: what an `.npz` file holds.
using NpzArchive = std::map<std::string, NpyArray>;

namespace detail {

/// The `.npy` (version 1.0) magic and header of an array; its data bytes follow.
inline std::vector<std::uint8_t> npyHeader(const NpyArray& array) {
  std::string header = "{'descr': '" + array.type + "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < array.shape.size(); ++i)
    header += std::to_string(array.shape[i]) + (array.shape.size() == 1 ? "," : i + 1 < array.shape.size() ? ", " : "");
  header += "), }";
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::vector<std::uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  putLittle(out, header.size(), 2);
  out.insert(out.end(), header.begin(), header.end());
  return out;
}

/// The `.npy` (version 1.0) bytes of an array.
inline std::vector<std::uint8_t> encodeNpy(const NpyArray& array) {
  std::vector<std::uint8_t> out = npyHeader(array);
  out.insert(out.end(), array.bytes.begin(), array.bytes.end());
  return out;
}

/// Writes all of [data, data + size) to `fd`, retrying short writes; false on an error.
inline bool writeAll(int fd, const std::uint8_t* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

/// Parses `.npy` bytes; throws FormatError (naming `name`) on anything unexpected.
inline NpyArray decodeNpy(const std::uint8_t* data, std::size_t size, const std::string& name) {
  auto bad = [&](const std::string& what) { fail<FormatError>("array '" + name + "'", "a valid .npy array", what); };
  static const std::uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size < 10 || !std::equal(magic, magic + 6, data)) bad("no .npy magic");
  if (data[6] != 1) bad("npy version " + std::to_string(data[6]));
  const auto headerSize = static_cast<std::size_t>(getLittle(data + 8, 2));
  if (10 + headerSize > size) bad("a header longer than the entry");
  const std::string header(reinterpret_cast<const char*>(data + 10), headerSize);
  auto field = [&](const std::string& key) {
    const auto at = header.find("'" + key + "':");
    if (at == std::string::npos) bad("no '" + key + "' in the header");
    std::size_t begin = at + key.size() + 3;
    while (begin < header.size() && header[begin] == ' ') ++begin;
    return begin;
  };
  NpyArray array;
  std::size_t at = field("descr");
  if (at >= header.size() || header[at] != '\'') bad("a malformed descr");
  const auto close = header.find('\'', at + 1);
  if (close == std::string::npos) bad("a malformed descr");
  array.type = header.substr(at + 1, close - at - 1);
  at = field("fortran_order");
  if (header.compare(at, 5, "False") != 0) bad("Fortran order");
  at = field("shape");
  if (at >= header.size() || header[at] != '(') bad("a malformed shape");
  const auto end = header.find(')', at);
  if (end == std::string::npos) bad("a malformed shape");
  std::string dims = header.substr(at + 1, end - at - 1);
  std::replace(dims.begin(), dims.end(), ',', ' ');
  std::size_t position = 0;
  while (position < dims.size()) {
    while (position < dims.size() && dims[position] == ' ') ++position;
    if (position >= dims.size()) break;
    std::size_t digits = position;
    while (digits < dims.size() && dims[digits] >= '0' && dims[digits] <= '9') ++digits;
    if (digits == position || digits - position > 12) bad("a malformed shape");
    array.shape.push_back(std::stoll(dims.substr(position, digits - position)));
    position = digits;
  }
  if (array.shape.size() > 8) bad("more than 8 dimensions");
  std::size_t elementSize = 0;
  for (const auto& [type, bytes] : {std::pair<const char*, std::size_t>{"<f4", 4}, {"<f8", 8}, {"<i8", 8},
                                    {"<i4", 4}, {"<u8", 8}, {"|u1", 1}})
    if (array.type == type) elementSize = bytes;
  if (elementSize == 0) bad("unsupported type '" + array.type + "'");
  // The product of the extents (zeros counted as ones) is bounded before it is formed, so that
  // neither this count nor NpyArray::size() can overflow.
  constexpr std::uint64_t limit = std::uint64_t{1} << 40;
  std::uint64_t count = 1, bound = 1;
  for (std::int64_t extent : array.shape) {
    if (extent < 0 || static_cast<std::uint64_t>(extent) > limit) bad("an extent out of range");
    const auto factor = static_cast<std::uint64_t>(extent);
    if (factor > 1 && bound > limit / factor) bad("too many elements");
    bound *= std::max<std::uint64_t>(factor, 1);
    count *= factor;
  }
  if (count * elementSize != size - 10 - headerSize)
    bad(std::to_string(size - 10 - headerSize) + " data bytes for " + std::to_string(count) + " elements");
  array.bytes.assign(data + 10 + headerSize, data + size);
  return array;
}

}  // namespace detail

namespace detail {

/// Streams `archive` as an uncompressed `.npz` to `sink(data, size)` (false: stop, the write
/// failed), entry by entry: the arrays are not copied into one buffer first. Returns false
/// when the sink failed; throws FormatError, before writing anything, for an archive beyond
/// the zip format's limits (4 GiB, 65535 entries).
template <class Sink>
bool writeNpz(const NpzArchive& archive, Sink&& sink) {
  // Layout: each entry's npy header, CRC-32 and offset, and the central directory.
  struct Entry {
    std::string name;
    std::vector<std::uint8_t> header;
    const NpyArray* array;
    std::uint32_t crc;
    std::uint64_t size, offset;
  };
  std::vector<Entry> entries;
  std::vector<std::uint8_t> directory;
  std::uint64_t offset = 0;
  for (const auto& [name, array] : archive) {
    Entry entry{name + ".npy", npyHeader(array), &array, 0, 0, offset};
    entry.size = entry.header.size() + array.bytes.size();
    if (entry.size >= 0xFFFFFFFFULL || offset + 30 + entry.name.size() + entry.size >= 0xFFFFFFFFULL)
      fail<FormatError>("array '" + name + "'", "an archive under 4 GiB", entry.size);
    if (entries.size() + 1 >= 0xFFFF) fail<FormatError>("archive", "fewer than 65535 arrays", entries.size() + 1);
    entry.crc = crc32(array.bytes.data(), array.bytes.size(), crc32(entry.header.data(), entry.header.size()));
    putLittle(directory, 0x02014b50, 4);  // central directory entry
    putLittle(directory, 20, 2);
    putLittle(directory, 20, 2);
    putLittle(directory, 0, 2);
    putLittle(directory, 0, 2);  // stored
    putLittle(directory, 0, 2);
    putLittle(directory, 0x21, 2);  // 1980-01-01
    putLittle(directory, entry.crc, 4);
    putLittle(directory, entry.size, 4);
    putLittle(directory, entry.size, 4);
    putLittle(directory, entry.name.size(), 2);
    putLittle(directory, 0, 6);  // extra, comment, disk
    putLittle(directory, 0, 2);
    putLittle(directory, 0, 4);
    putLittle(directory, entry.offset, 4);
    directory.insert(directory.end(), entry.name.begin(), entry.name.end());
    offset += 30 + entry.name.size() + entry.size;
    entries.push_back(std::move(entry));
  }
  const std::uint64_t directoryOffset = offset, directorySize = directory.size();
  putLittle(directory, 0x06054b50, 4);  // end of central directory
  putLittle(directory, 0, 4);
  putLittle(directory, entries.size(), 2);
  putLittle(directory, entries.size(), 2);
  putLittle(directory, directorySize, 4);
  putLittle(directory, directoryOffset, 4);
  putLittle(directory, 0, 2);

  bool written = true;
  for (const Entry& entry : entries) {
    std::vector<std::uint8_t> local;
    putLittle(local, 0x04034b50, 4);  // local file header
    putLittle(local, 20, 2);
    putLittle(local, 0, 2);
    putLittle(local, 0, 2);  // stored
    putLittle(local, 0, 2);
    putLittle(local, 0x21, 2);
    putLittle(local, entry.crc, 4);
    putLittle(local, entry.size, 4);
    putLittle(local, entry.size, 4);
    putLittle(local, entry.name.size(), 2);
    putLittle(local, 0, 2);
    local.insert(local.end(), entry.name.begin(), entry.name.end());
    local.insert(local.end(), entry.header.begin(), entry.header.end());
    written = written && sink(local.data(), local.size()) && sink(entry.array->bytes.data(), entry.array->bytes.size());
  }
  return written && sink(directory.data(), directory.size());
}

}  // namespace detail

/// The bytes of `archive` as an uncompressed `.npz`, in memory (what saveNpz writes).
inline std::vector<std::uint8_t> encodeNpz(const NpzArchive& archive) {
  std::vector<std::uint8_t> out;
  detail::writeNpz(archive, [&](const std::uint8_t* data, std::size_t size) {
    out.insert(out.end(), data, data + size);
    return true;
  });
  return out;
}

/// Writes `archive` to `path` as an uncompressed `.npz`, atomically: the bytes go to
/// `path.tmp`, are flushed to disk, then renamed over `path`, so that a crash or a kill at
/// any moment leaves either the previous file or the new one, never a partial file. The
/// entries are streamed: the arrays are not copied into one buffer first. FormatError naming
/// `argument` (what the file is to the caller, e.g. "weights file") when it cannot be written.
inline void saveNpz(const std::string& path, const NpzArchive& archive, std::string_view argument = "npz path") {
  const std::string temporary = path + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) detail::fail<FormatError>(argument, "a writable file", path + ": " + std::strerror(errno));
  bool written = false;
  try {
    written = detail::writeNpz(archive, [fd](const std::uint8_t* data, std::size_t size) {
      return detail::writeAll(fd, data, size);
    });
  } catch (...) {
    ::close(fd);
    ::unlink(temporary.c_str());
    throw;
  }
  if (!written) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    ::unlink(temporary.c_str());
    detail::fail<FormatError>(argument, "a complete write", temporary + ": " + reason);
  }
  // The descriptor is closed whatever fsync says; the first failure is the one reported.
  const bool synced = ::fsync(fd) == 0;
  const int syncError = errno;
  const bool closed = ::close(fd) == 0;
  if (!synced) errno = syncError;
  if (!synced || !closed || std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temporary.c_str());
    detail::fail<FormatError>(argument, "a durable write and rename", path + ": " + reason);
  }
  // The rename itself reaches the disk with the directory (best effort: a kill cannot undo
  // the rename, only a power loss before this sync can).
  const auto slash = path.find_last_of('/');
  const std::string folder = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int folderFd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (folderFd >= 0) {
    ::fsync(folderFd);
    ::close(folderFd);
  }
}

/// Parses an `.npz` archive held in memory (`name` is used in messages). Stored (uncompressed)
/// entries only, zip64 size fields included, every entry's CRC-32 checked.
inline NpzArchive loadNpz(const std::uint8_t* data, std::size_t size, const std::string& name) {
  using detail::getLittle;
  auto bad = [&](const std::string& what) { detail::fail<FormatError>(name, "a valid .npz archive", what); };
  constexpr std::size_t endRecord = 22;
  if (size < endRecord) bad(std::to_string(size) + " bytes, too short");
  std::size_t end = size - endRecord;
  const std::size_t lowest = size > endRecord + 0xFFFF ? size - endRecord - 0xFFFF : 0;
  while (getLittle(data + end, 4) != 0x06054b50) {
    if (end == lowest) bad("no end-of-directory record (truncated?)");
    --end;
  }
  const auto entries = getLittle(data + end + 10, 2);
  const auto directorySize = getLittle(data + end + 12, 4);
  const auto directoryOffset = getLittle(data + end + 16, 4);
  if (directoryOffset > end || directorySize > end - directoryOffset) bad("a directory outside the file");
  NpzArchive archive;
  std::size_t at = directoryOffset;
  const std::size_t directoryEnd = directoryOffset + directorySize;
  for (std::uint64_t entry = 0; entry < entries; ++entry) {
    if (at + 46 > directoryEnd || getLittle(data + at, 4) != 0x02014b50) bad("a damaged directory entry");
    const auto method = getLittle(data + at + 10, 2);
    const auto crc = static_cast<std::uint32_t>(getLittle(data + at + 16, 4));
    std::uint64_t compressed = getLittle(data + at + 20, 4), uncompressed = getLittle(data + at + 24, 4);
    const auto nameLength = getLittle(data + at + 28, 2), extraLength = getLittle(data + at + 30, 2);
    const auto commentLength = getLittle(data + at + 32, 2);
    std::uint64_t offset = getLittle(data + at + 42, 4);
    if (at + 46 + nameLength + extraLength + commentLength > directoryEnd) bad("a directory entry past its end");
    std::string entryName(reinterpret_cast<const char*>(data + at + 46), nameLength);
    // zip64: the 0xFFFFFFFF fields are given, in order, in extra field 0x0001.
    for (std::size_t x = at + 46 + nameLength; x + 4 <= at + 46 + nameLength + extraLength;) {
      const auto id = getLittle(data + x, 2), length = getLittle(data + x + 2, 2);
      if (x + 4 + length > at + 46 + nameLength + extraLength) bad("a damaged extra field");
      if (id == 0x0001) {
        std::size_t field = x + 4;
        for (std::uint64_t* value : {&uncompressed, &compressed, &offset})
          if (*value == 0xFFFFFFFF) {
            if (field + 8 > x + 4 + length) bad("a short zip64 field");
            *value = getLittle(data + field, 8);
            field += 8;
          }
      }
      x += 4 + length;
    }
    at += 46 + nameLength + extraLength + commentLength;
    if (method != 0) bad("entry '" + entryName + "' compressed (method " + std::to_string(method) + "); only stored entries");
    if (compressed != uncompressed) bad("entry '" + entryName + "' with inconsistent sizes");
    if (offset > directoryOffset || directoryOffset - offset < 30 || getLittle(data + offset, 4) != 0x04034b50)
      bad("entry '" + entryName + "' without its local header");
    const std::uint64_t start = offset + 30 + getLittle(data + offset + 26, 2) + getLittle(data + offset + 28, 2);
    if (start > directoryOffset || uncompressed > directoryOffset - start)
      bad("entry '" + entryName + "' extending past the data");
    if (detail::crc32(data + start, uncompressed) != crc) bad("entry '" + entryName + "' failing its CRC-32 check");
    if (entryName.size() < 5 || entryName.compare(entryName.size() - 4, 4, ".npy") != 0)
      bad("entry '" + entryName + "' that is not an .npy array");
    entryName.resize(entryName.size() - 4);
    archive[entryName] = detail::decodeNpy(data + start, uncompressed, entryName);
  }
  return archive;
}

namespace detail {

/// "a directory", "a FIFO", …: what a file that is not a regular file is, for messages.
inline const char* fileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

/// The bytes of the regular file at `path`. The file is opened without blocking (a FIFO would
/// wait for a writer) and its kind and size are those of the opened descriptor (fstat), so
/// that nothing else can be read or sized in between; FormatError naming `argument` and the
/// path for a missing, unreadable or irregular file (a directory, FIFO, device, socket).
inline std::vector<std::uint8_t> readRegularFile(const std::string& path, std::string_view argument) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) fail<FormatError>(argument, "a readable file", path + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat status {};
  if (::fstat(fd, &status) != 0) fail<FormatError>(argument, "a readable file", path + ": " + std::strerror(errno));
  if (!S_ISREG(status.st_mode)) fail<FormatError>(argument, "a regular file", path + " (" + fileKind(status.st_mode) + ")");
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
    fail<FormatError>(argument, "a readable file", path + ": " + std::strerror(errno));
  std::vector<std::uint8_t> bytes;
  try {
    bytes.resize(static_cast<std::size_t>(status.st_size));
  } catch (const std::exception&) {  // std::bad_alloc, std::length_error
    fail<FormatError>(argument, "a file that fits in memory", path + " (" + describe(status.st_size) + " bytes)");
  }
  for (std::size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail<FormatError>(argument, "a readable file", path + ": " + std::strerror(errno));
    if (n == 0) fail<FormatError>(argument, "a readable file", path + " (shorter than its size while read)");
    done += static_cast<std::size_t>(n);
  }
  return bytes;
}

}  // namespace detail

/// Reads an `.npz` archive written by saveNpz or by NumPy (`numpy.savez`, uncompressed) from
/// the regular file at `path` (`argument` names it in messages). Throws FormatError for
/// anything but a regular file holding a complete, consistent archive.
inline NpzArchive loadNpz(const std::string& path, std::string_view argument = "npz path") {
  const std::vector<std::uint8_t> file = detail::readRegularFile(path, argument);
  return loadNpz(file.data(), file.size(), path);
}

}  // namespace snap

#pragma once
/// @file
/// The readout contract as C++20 concepts: what a Trainer needs of a readout (Readout,
/// RegressionReadout, or one of your own). The trainer checks it with one static_assert per
/// requirement, so a type that lacks a member fails to compile with a sentence that names it.

#include <concepts>
#include <string>
#include <type_traits>

#include "snap/archive/npz.hpp"
#include "snap/core/types.hpp"

namespace snap {
namespace requirement {

template <class R>
concept ReadoutHasScalar = requires { typename R::Scalar; } &&
                           (std::is_same_v<typename R::Scalar, float> || std::is_same_v<typename R::Scalar, double>);

template <class R>
concept ReadoutHasSizes = requires(const R& readout) {
  { readout.hiddenSize() } -> std::convertible_to<Index>;
  { readout.outputs() } -> std::convertible_to<Index>;
};

template <class R>
concept ReadoutHasParameters = ReadoutHasScalar<R> && requires(R& readout, const R& constReadout) {
  { constReadout.parameters() } -> std::convertible_to<const Vector<typename R::Scalar>&>;
  { readout.parameters() } -> std::same_as<Vector<typename R::Scalar>&>;
  { constReadout.gradient() } -> std::convertible_to<const Vector<typename R::Scalar>&>;
  readout.resetGradient();
};

/// The losses of B streams are evaluated (evaluateLoss(y, target, δ, slot)) before they are
/// added (commitLoss()) or forgotten (discardLosses()).
template <class R>
concept ReadoutHasTwoPhaseLoss = requires(R& readout) {
  readout.commitLoss();
  readout.discardLosses();
};

template <class R>
concept ReadoutHasState = requires(R& readout, const R& constReadout, NpzArchive& out, const NpzArchive& in) {
  constReadout.saveState(out, std::string());
  readout.loadState(in, std::string());
};

/// evaluateLoss(y, class, δ, slot): the target of a stream is a class index (Readout).
template <class R>
concept ReadoutOfClasses = ReadoutHasScalar<R> && requires(R& readout, const Vector<typename R::Scalar>& output,
                                                           Vector<typename R::Scalar>& gradient, Index target) {
  { readout.evaluateLoss(output, target, gradient, target) } -> std::convertible_to<typename R::Scalar>;
};

/// evaluateLoss(y, values, δ, slot): the target of a stream is a vector of outputs() real
/// values (RegressionReadout).
template <class R>
concept ReadoutOfValues = ReadoutHasScalar<R> && requires(R& readout, const Vector<typename R::Scalar>& output,
                                                          const Vector<typename R::Scalar>& target,
                                                          Vector<typename R::Scalar>& gradient, Index slot) {
  { readout.evaluateLoss(output, target, gradient, slot) } -> std::convertible_to<typename R::Scalar>;
};

}  // namespace requirement

/// A readout a Trainer can train: sizes, parameters [W; b] and their gradient, a two-phase
/// loss over B slots with a class (Readout) or a vector of real values (RegressionReadout) as
/// the target, saveState/loadState, and value semantics (the trainer checks a checkpoint on a
/// copy).
template <class R>
concept TrainableReadout = requirement::ReadoutHasScalar<R> && requirement::ReadoutHasSizes<R> &&
                           requirement::ReadoutHasParameters<R> && requirement::ReadoutHasTwoPhaseLoss<R> &&
                           requirement::ReadoutHasState<R> && std::copyable<R> &&
                           (requirement::ReadoutOfClasses<R> || requirement::ReadoutOfValues<R>);

}  // namespace snap

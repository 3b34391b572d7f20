// Name templates: the index arithmetic of the rename table.
#include "worker/model/checkpoint/name_template.h"

#include "gtest/gtest.h"

namespace likeness::model::checkpoint {
namespace {

TEST(NameTemplateTest, ExpandsIndexArithmetic) {
  TemplateVars v;
  v.i = 1;
  v.j = 0;
  v.L = 2;
  v.N = 3;
  v.A = 1;
  EXPECT_EQ(*ExpandNameTemplate("input_blocks.{i*(L+1)+j+1}.0", v), "input_blocks.4.0");
  EXPECT_EQ(*ExpandNameTemplate("input_blocks.{(i+1)*(L+1)}.0.op", v), "input_blocks.6.0.op");
  EXPECT_EQ(*ExpandNameTemplate("output_blocks.{i*(L+1)+L}.{1+A}.conv", v),
            "output_blocks.5.2.conv");
  EXPECT_EQ(*ExpandNameTemplate("decoder.up.{N-1-i}.block.{j}", v), "decoder.up.1.block.0");
  EXPECT_EQ(*ExpandNameTemplate("middle_block.{2*j}", v), "middle_block.0");
  EXPECT_EQ(*ExpandNameTemplate("conv_in", v), "conv_in");
  v.k = 12;
  EXPECT_EQ(*ExpandNameTemplate("layers.{k}.{k+10}", v), "layers.12.22");
}

TEST(NameTemplateTest, MalformedTemplatesAreInternalErrors) {
  const TemplateVars v;
  for (const char* bad : {"a.{i", "a.{x}", "a.{(i+1}", "a.{i+}", "a.{N-1-i-1}", "a.{}"}) {
    EXPECT_EQ(ExpandNameTemplate(bad, v).status().code(), absl::StatusCode::kInternal) << bad;
  }
}

}  // namespace
}  // namespace likeness::model::checkpoint

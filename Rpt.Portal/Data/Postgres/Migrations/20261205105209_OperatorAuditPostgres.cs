using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Rpt.Portal.Data.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class OperatorAuditPostgres : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "operator_audit",
                columns: table => new
                {
                    id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    seq = table.Column<long>(type: "bigint", nullable: false),
                    at = table.Column<long>(type: "bigint", nullable: false),
                    actor = table.Column<string>(type: "character varying(320)", maxLength: 320, nullable: false),
                    origin = table.Column<string>(type: "character varying(320)", maxLength: 320, nullable: false),
                    action = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    tenant_id = table.Column<string>(type: "character varying(320)", maxLength: 320, nullable: true),
                    subject = table.Column<string>(type: "character varying(320)", maxLength: 320, nullable: true),
                    old_value = table.Column<string>(type: "text", nullable: true),
                    new_value = table.Column<string>(type: "text", nullable: true),
                    prev_hash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    hash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_operator_audit", x => x.id);
                });

            migrationBuilder.CreateIndex(
                name: "ix_operator_audit_tenant",
                table: "operator_audit",
                columns: new[] { "tenant_id", "seq" });

            migrationBuilder.CreateIndex(
                name: "ux_operator_audit_seq",
                table: "operator_audit",
                column: "seq",
                unique: true);

            // The audit log is append-only, as the ledger is: rpt_refuse_change() is the initial migration's.
            foreach (var op in new[] { ("update", "UPDATE", "ROW"), ("delete", "DELETE", "ROW"), ("truncate", "TRUNCATE", "STATEMENT") })
                migrationBuilder.Sql($"CREATE TRIGGER operator_audit_no_{op.Item1} BEFORE {op.Item2} ON operator_audit FOR EACH {op.Item3} EXECUTE FUNCTION rpt_refuse_change();");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            foreach (var op in new[] { "update", "delete", "truncate" })
                migrationBuilder.Sql($"DROP TRIGGER IF EXISTS operator_audit_no_{op} ON operator_audit;");
            migrationBuilder.DropTable(
                name: "operator_audit");
        }
    }
}
